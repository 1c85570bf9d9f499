"""Benchmark: `releasekit env up` against a plain dbt build of the whole project into a
branch schema, on PostgreSQL: the DuckDB benchmark (test_env_up_benchmark.py) measured the
same way, one synthetic project and one fresh database (`rk_bench_<uuid>`) per data size.
Every size is deployed first; then the `env up` rounds alternate between the sizes, so that
whatever else loads the machine weighs on every size alike, and the spread measures data
volume, not the moment. The databases are dropped at the end.

Run: pytest -m benchmark -s tests/benchmarks/test_env_up_benchmark_postgres.py
Sizes: RELEASEKIT_BENCH_MODELS (default 200); RELEASEKIT_BENCH_ROWS_LIST (default
"1000000,10000000"). The plain build runs at the first size only. Needs the PostgreSQL
server at 127.0.0.1:5432 (skips without it, fails without it under CI).

Cost: PostgreSQL stores what DuckDB compresses. At N=200, R=1M the deploy takes ~200 s and
the database ~6.8 GB (about 35 bytes per raw row and model), twice that with the plain
build; R=10M would need ~70 GB and well over half an hour. All sizes are held at once: the
test fails before building anything when the server's disk lacks room for them; on a small
machine measure 1M and 5M: RELEASEKIT_BENCH_ROWS_LIST=1000000,5000000.

Targets (issue 3): `env up` at least 20x faster than the plain build at R=1,000,000, and
equal within 20% across data sizes (it copies no data).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import server
from tests.support.warehouse import run_sql

from .synthetic import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    SyntheticProject,
    drop_postgres_database,
    generate_project,
)
from .test_deploy_benchmark import BIN, timed, with_releasekit
from .test_env_up_benchmark import ROUNDS

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres]

MODELS = int(os.environ.get("RELEASEKIT_BENCH_MODELS", "200"))
SIZES = [int(n) for n in os.environ.get("RELEASEKIT_BENCH_ROWS_LIST", "1000000,10000000").split(",")]
BYTES_PER_ROW_AND_MODEL = 35  # measured: 6.8 GB after deploying N=200, R=1M


def _scalar(database: str, sql: str) -> Any:
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]
    finally:
        connection.close()


def require_server() -> str:
    """The server's version; skips without a server, except under CI (env var CI), where it fails."""
    with server() as con:
        [(version,)] = run_sql(con, "show server_version")
        return str(version)


def require_disk() -> None:
    """Fail before building anything when the sizes would not fit on the server's disk
    together (all are held until the end; the first size holds two builds). Skipped when
    the data directory is not on this machine."""
    needed = sum(
        BYTES_PER_ROW_AND_MODEL * rows * MODELS * (2 if index == 0 else 1) for index, rows in enumerate(SIZES)
    )
    try:
        free = shutil.disk_usage(str(_scalar("postgres", "show data_directory"))).free
    except Exception:  # not a superuser, or a server elsewhere: nothing to check here
        return
    if free < needed * 1.25:
        pytest.fail(
            f"sizes {SIZES} need ~{needed / 1e9:.0f} GB on the PostgreSQL server's disk, "
            f"which has {free / 1e9:.0f} GB free: set RELEASEKIT_BENCH_ROWS_LIST to smaller sizes"
        )


def plain_branch_build(project: SyntheticProject, dbt: str, tmp: Path) -> float:
    """dbt build of the whole project into a fresh schema: the hand-made branch schema."""
    profiles = tmp / "plain-profiles"
    profiles.mkdir()
    text = (project.project_dir / "profiles.yml").read_text()
    assert text.count("schema: public") == 1
    (profiles / "profiles.yml").write_text(text.replace("schema: public", "schema: plain_branch"))
    return timed(
        [dbt, "build", "--profiles-dir", str(profiles), "--target-path", str(tmp / "plain-target")],
        project.project_dir,
    )


def interleaved_env_up_seconds(roots: dict[int, Path], releasekit: str) -> dict[int, list[float]]:
    """ROUNDS samples per size, taken round by round across the sizes (up timed, down not)."""
    samples: dict[int, list[float]] = {rows: [] for rows in roots}
    for index in range(ROUNDS):
        for rows, root in roots.items():
            branch = f"bench/branch-{index}"
            samples[rows].append(timed([releasekit, "env", "up", branch], root))
            subprocess.run([releasekit, "env", "down", branch], cwd=root, check=True, capture_output=True)
    return samples


def test_env_up_against_a_plain_branch_build_on_postgres(tmp_path: Path) -> None:
    dbt, releasekit = str(BIN / "dbt"), str(BIN / "releasekit")
    report: dict[str, Any] = {
        "warehouse": "postgres",
        "server_version": require_server(),
        "models": MODELS,
        "rounds": ROUNDS,
    }
    require_disk()
    databases: list[str] = []
    projects: dict[int, SyntheticProject] = {}
    try:
        for rows in SIZES:
            database = f"rk_bench_{uuid.uuid4().hex}"
            databases.append(database)
            start = time.perf_counter()
            project = generate_project(
                tmp_path / f"rows-{rows}", models=MODELS, rows=rows, warehouse="postgres", database=database
            )
            report[f"generate_seconds_rows_{rows}"] = round(time.perf_counter() - start, 2)
            with_releasekit(project)
            projects[rows] = project
            deploy = timed([releasekit, "deploy", "dev"], project.project_dir)
            report[f"deploy_dev_seconds_rows_{rows}"] = round(deploy, 2)
            report[f"database_bytes_after_deploy_rows_{rows}"] = _scalar(
                database, "select pg_database_size(current_database())"
            )
        # Other work on the machine slows `env up` more than data size can: say how busy it was.
        report["load_average_1min_before_env_up"] = round(os.getloadavg()[0], 2)
        roots = {rows: project.project_dir for rows, project in projects.items()}
        samples = interleaved_env_up_seconds(roots, releasekit)
        for rows, values in samples.items():
            report[f"env_up_seconds_median_rows_{rows}"] = round(statistics.median(values), 2)
            report[f"env_up_seconds_rows_{rows}"] = [round(s, 2) for s in values]
        first = SIZES[0]
        plain = plain_branch_build(projects[first], dbt, tmp_path)
        report[f"plain_dbt_branch_build_seconds_rows_{first}"] = round(plain, 2)
        report["speedup_at_first_size"] = round(plain / statistics.median(samples[first]), 1)
    finally:
        for database in databases:
            drop_postgres_database(database)
    medians = [report[f"env_up_seconds_median_rows_{rows}"] for rows in SIZES]
    report["env_up_spread_across_sizes"] = round(max(medians) / min(medians) - 1, 3)
    print("\n" + json.dumps(report, indent=2))
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "env_up_benchmark_postgres.json").write_text(
        json.dumps(report, indent=2)
    )
