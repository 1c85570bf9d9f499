"""Benchmark: `releasekit promote prod` from staging with equal parameters (nothing to build)
against the usual way, `dbt build --target prod` of the whole project, side by side in one run.

Run: pytest -m benchmark -s tests/benchmarks/test_promote_benchmark.py
Size: RELEASEKIT_BENCH_MODELS (default 200), RELEASEKIT_BENCH_ROWS (default 1000000).

Targets (issue 5): the promotion at least 10x faster than the plain build, and the switch
itself (the ledger's `switching` to `succeeded`) under 2 seconds.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from releasekit.state.local import LocalStore

from .synthetic import generate_project
from .test_deploy_benchmark import BIN, MODELS, ROWS, git, timed, with_releasekit

pytestmark = pytest.mark.benchmark

ENVIRONMENTS = {
    "dev.yml": "version: 1\nschema: dev\nbranch: main\n",
    "staging.yml": "version: 1\nschema: staging\nbranch: staging\npromotes_from: dev\n",
    "prod.yml": "version: 1\nschema: prod\nbranch: prod\npromotes_from: staging\n",
}


def _switch_seconds(root: Path, env: str) -> float:
    """From the `switching` entry to the `succeeded` one of the environment's last release
    (the ledger keeps whole seconds: 0 means under one)."""
    entries = LocalStore(root / ".releasekit").entries(env)
    last = entries[-1]
    switching = next(e for e in entries if e.release_id == last.release_id and e.outcome == "switching")
    return (datetime.fromisoformat(last.at) - datetime.fromisoformat(switching.at)).total_seconds()


def test_promote_against_a_full_prod_build(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "project", models=MODELS, rows=ROWS)
    with_releasekit(project)
    root, dbt, releasekit = project.project_dir, str(BIN / "dbt"), str(BIN / "releasekit")
    for name, text in ENVIRONMENTS.items():
        (root / "environments" / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "dev, staging and prod")
    profiles = tmp_path / "plain-profiles"
    profiles.mkdir()
    text = (root / "profiles.yml").read_text().replace("threads: 4", "threads: 4\n      schema: plain_prod")
    (profiles / "profiles.yml").write_text(text)

    figures: dict[str, float] = {}
    figures["releasekit deploy dev"] = timed([releasekit, "deploy", "dev"], root)
    figures["releasekit promote staging"] = timed([releasekit, "promote", "staging"], root)
    figures["releasekit promote prod"] = timed([releasekit, "promote", "prod"], root)
    switch = _switch_seconds(root, "prod")
    figures["dbt build (whole project, prod schema)"] = timed(
        [dbt, "build", "--profiles-dir", str(profiles), "--target-path", str(tmp_path / "plain-target")], root
    )
    built = LocalStore(root / ".releasekit").entries("prod")[-1].built
    report = {
        "models": MODELS,
        "rows": ROWS,
        "seconds": {k: round(v, 2) for k, v in figures.items()},
        "prod_models_built_by_promotion": len(built),
        "prod_switch_seconds_from_ledger": switch,
        "promote_speedup_vs_full_build": round(
            figures["dbt build (whole project, prod schema)"] / figures["releasekit promote prod"], 1
        ),
    }
    print("\n" + json.dumps(report, indent=2))
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "promote_benchmark.json").write_text(
        json.dumps(report, indent=2)
    )
    assert not built, "equal parameters: the promotion must build nothing"
