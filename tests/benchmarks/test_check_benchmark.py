"""Benchmark: `releasekit check` of a branch with one changed mid-DAG model, against the
plain tools doing the same job the usual way: a full `dbt build` into a fresh schema plus
`sqlfluff lint` of every model, side by side in one run.

Run: pytest -m benchmark -s tests/benchmarks/test_check_benchmark.py
Size: RELEASEKIT_BENCH_MODELS (default 200), RELEASEKIT_BENCH_ROWS (default 1000000).

Target (issue 4): `releasekit check` at least 10x faster than the plain job. Also reported:
the lint step alone (one changed file) against sqlfluff over all model files.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from .synthetic import generate_project
from .test_deploy_benchmark import BIN, MODELS, ROWS, git, timed, with_releasekit

pytestmark = pytest.mark.benchmark


def _sqlfluff_all(root: Path) -> float:
    """sqlfluff's CLI over the models folder, as a CI job without releasekit runs it; it
    exits 1 when it finds violations, which is not a failure of the run."""
    start = time.perf_counter()
    run = subprocess.run(
        [
            str(BIN / "sqlfluff"),
            "lint",
            "models",
            "--dialect",
            "duckdb",
            "--templater",
            "jinja",
            "--processes",
            "0",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    assert run.returncode in (0, 1), run.stderr[-2000:]
    return elapsed


def test_check_against_a_full_build_and_lint_of_everything(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "project", models=MODELS, rows=ROWS)
    with_releasekit(project)
    root, dbt, releasekit = project.project_dir, str(BIN / "dbt"), str(BIN / "releasekit")
    profiles = tmp_path / "plain-profiles"
    profiles.mkdir()
    text = (root / "profiles.yml").read_text().replace("threads: 4", "threads: 4\n      schema: plain_branch")
    (profiles / "profiles.yml").write_text(text)

    timed([releasekit, "deploy", "dev"], root)  # the base environment, as CI finds it
    changed = project.pick_mid_model(max_descendants=5)
    git(root, "switch", "-q", "-c", "feature/change")
    project.edit_model(changed)
    git(root, "commit", "-qam", f"edit {changed}")

    figures: dict[str, float] = {}
    # releasekit check exits 1 when it finds violations (the synthetic SQL is not
    # sqlfluff-clean); that is a verdict, not a failed run.
    start = time.perf_counter()
    run = subprocess.run(
        [releasekit, "check", "--json", str(tmp_path / "check.json")],
        cwd=root,
        capture_output=True,
        text=True,
    )
    figures["releasekit check (one change)"] = time.perf_counter() - start
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "check.json").read_text())
    steps = {c["name"]: c["seconds"] for c in report["checks"]}

    figures["dbt build (full, fresh schema)"] = timed(
        [dbt, "build", "--profiles-dir", str(profiles), "--target-path", str(tmp_path / "plain-target")], root
    )
    figures["sqlfluff lint (all models)"] = _sqlfluff_all(root)
    plain = figures["dbt build (full, fresh schema)"] + figures["sqlfluff lint (all models)"]
    result = {
        "models": MODELS,
        "rows": ROWS,
        "changed_model": changed,
        "descendants": len(project.descendants(changed)),
        "seconds": {k: round(v, 2) for k, v in figures.items()},
        "check_steps_seconds": steps,
        "plain_job_seconds": round(plain, 2),
        "check_speedup_vs_plain_job": round(plain / figures["releasekit check (one change)"], 1),
        "lint_step_speedup_vs_sqlfluff_all": round(figures["sqlfluff lint (all models)"] / steps["lint"], 1),
        "verdict": report["verdict"],
    }
    print("\n" + json.dumps(result, indent=2))
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "check_benchmark.json").write_text(
        json.dumps(result, indent=2)
    )
