"""Benchmark: `releasekit env up` against the usual way to make a branch schema (building
the whole project into it with plain dbt), on one synthetic project per data size.

Run: pytest -m benchmark -s tests/benchmarks/test_env_up_benchmark.py
Sizes: RELEASEKIT_BENCH_MODELS (default 200); RELEASEKIT_BENCH_ROWS_LIST (default
"1000000,10000000"). The plain build runs at the first size only.

Targets (issue 3): `env up` at least 20x faster than the plain build at R=1,000,000, and
equal within 20% across data sizes (it copies no data).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

import pytest

from .synthetic import generate_project
from .test_deploy_benchmark import BIN, timed, with_releasekit

pytestmark = pytest.mark.benchmark

MODELS = int(os.environ.get("RELEASEKIT_BENCH_MODELS", "200"))
SIZES = [int(n) for n in os.environ.get("RELEASEKIT_BENCH_ROWS_LIST", "1000000,10000000").split(",")]
ROUNDS = 5


def env_up_seconds(root: Path, releasekit: str) -> list[float]:
    """Median-worthy samples: up, then down (untimed), ROUNDS times."""
    samples = []
    for index in range(ROUNDS):
        samples.append(timed([releasekit, "env", "up", f"bench/branch-{index}"], root))
        subprocess.run(
            [releasekit, "env", "down", f"bench/branch-{index}"], cwd=root, check=True, capture_output=True
        )
    return samples


def plain_branch_build(root: Path, dbt: str, tmp: Path) -> float:
    """dbt build of the whole project into a fresh schema: the hand-made branch schema."""
    profiles = tmp / "plain-profiles"
    profiles.mkdir()
    text = (root / "profiles.yml").read_text().replace("threads: 4", "threads: 4\n      schema: plain_branch")
    (profiles / "profiles.yml").write_text(text)
    return timed(
        [dbt, "build", "--profiles-dir", str(profiles), "--target-path", str(tmp / "plain-target")], root
    )


def test_env_up_against_a_plain_branch_build(tmp_path: Path) -> None:
    dbt, releasekit = str(BIN / "dbt"), str(BIN / "releasekit")
    report: dict[str, object] = {"models": MODELS, "rounds": ROUNDS}
    for rows in SIZES:
        project = generate_project(tmp_path / f"rows-{rows}", models=MODELS, rows=rows)
        with_releasekit(project)
        root = project.project_dir
        timed([releasekit, "deploy", "dev"], root)
        samples = env_up_seconds(root, releasekit)
        report[f"env_up_seconds_median_rows_{rows}"] = round(statistics.median(samples), 2)
        report[f"env_up_seconds_rows_{rows}"] = [round(s, 2) for s in samples]
        if rows == SIZES[0]:
            plain = plain_branch_build(root, dbt, tmp_path)
            report[f"plain_dbt_branch_build_seconds_rows_{rows}"] = round(plain, 2)
            report["speedup_at_first_size"] = round(plain / statistics.median(samples), 1)
    medians = [report[f"env_up_seconds_median_rows_{rows}"] for rows in SIZES]
    report["env_up_spread_across_sizes"] = round(max(medians) / min(medians) - 1, 3)  # type: ignore[type-var,operator]
    print("\n" + json.dumps(report, indent=2))
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "env_up_benchmark.json").write_text(
        json.dumps(report, indent=2)
    )
