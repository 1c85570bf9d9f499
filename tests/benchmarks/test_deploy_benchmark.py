"""Benchmark: releasekit deploy vs plain dbt, side by side on one synthetic project.

Run: pytest -m benchmark -s tests/benchmarks/test_deploy_benchmark.py
Size: RELEASEKIT_BENCH_MODELS (default 200), RELEASEKIT_BENCH_ROWS (default 1000000).

Every figure is a whole command run as a subprocess (interpreter start, dbt import, parse
included), so the ratios compare what a user waits for. Targets (issue 2): a deploy after
a change to one mid-DAG model (<= 5 descendants) at least 10x faster than a full `dbt
build`; a no-op deploy no slower than `dbt parse` (warm, partial parsing) + 2 s. It also
reports plain dbt's slim rebuild of the same change (`--select changed+`), the floor any
tool built on dbt pays.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .synthetic import SyntheticProject, generate_project

pytestmark = pytest.mark.benchmark

BIN = Path(sys.executable).parent
MODELS = int(os.environ.get("RELEASEKIT_BENCH_MODELS", "200"))
ROWS = int(os.environ.get("RELEASEKIT_BENCH_ROWS", "1000000"))


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return elapsed


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def with_releasekit(project: SyntheticProject) -> None:
    releasekit_repo(project.project_dir, "synthetic project")


def releasekit_repo(root: Path, message: str) -> None:
    """releasekit's config (one environment, dev) beside the dbt project in `root`, and all
    of it committed in a new git repository."""
    (root / "releasekit.yml").write_text("version: 1\n")
    (root / "environments").mkdir()
    (root / "environments" / "dev.yml").write_text("version: 1\nschema: dev\n")
    (root / ".gitignore").write_text(".releasekit/\ntarget/\nlogs/\n*.duckdb\n*.wal\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def test_deploy_against_plain_dbt(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "project", models=MODELS, rows=ROWS)
    with_releasekit(project)
    root, dbt, releasekit = project.project_dir, str(BIN / "dbt"), str(BIN / "releasekit")
    dbt_args = ["--profiles-dir", str(root), "--target-path", str(tmp_path / "dbt-target")]

    figures: dict[str, float] = {}
    figures["dbt build (full)"] = timed([dbt, "build", *dbt_args], root)
    shutil.rmtree(tmp_path / "dbt-target")
    figures["dbt parse (cold)"] = timed([dbt, "parse", *dbt_args], root)
    figures["dbt parse (warm)"] = timed([dbt, "parse", *dbt_args], root)
    figures["releasekit deploy (first)"] = timed([releasekit, "deploy", "dev"], root)

    changed = project.pick_mid_model(max_descendants=5)
    project.edit_model(changed)
    git(root, "commit", "-qam", f"edit {changed}")
    figures["releasekit deploy (one change)"] = timed([releasekit, "deploy", "dev"], root)
    figures["releasekit deploy (no-op)"] = timed([releasekit, "deploy", "dev"], root)
    # Plain dbt's own best case for the same change: a slim build of the model and its
    # descendants, partial parsing warm (the state a hand-written script would keep).
    figures["dbt build --select changed+ (warm)"] = timed(
        [dbt, "build", *dbt_args, "--select", f"{changed}+"], root
    )

    speedup = figures["dbt build (full)"] / figures["releasekit deploy (one change)"]
    noop_margin = figures["releasekit deploy (no-op)"] - figures["dbt parse (warm)"]
    report = {
        "models": MODELS,
        "rows": ROWS,
        "changed_model": changed,
        "descendants": len(project.descendants(changed)),
        "seconds": {k: round(v, 2) for k, v in figures.items()},
        "one_change_speedup_vs_full_dbt_build": round(speedup, 1),
        "noop_minus_warm_dbt_parse_seconds": round(noop_margin, 2),
        "one_change_minus_slim_dbt_build_seconds": round(
            figures["releasekit deploy (one change)"] - figures["dbt build --select changed+ (warm)"], 2
        ),
    }
    print("\n" + json.dumps(report, indent=2))
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "deploy_benchmark.json").write_text(
        json.dumps(report, indent=2)
    )
