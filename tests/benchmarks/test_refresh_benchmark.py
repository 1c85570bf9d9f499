"""Benchmark: releasekit refresh vs plain dbt, side by side on one synthetic project.

Run: pytest -m benchmark -s tests/benchmarks/test_refresh_benchmark.py
Size: RELEASEKIT_BENCH_MODELS (default 200), RELEASEKIT_BENCH_ROWS (default 1000000).

The synthetic project reads one source, `raw.events`. Here a second source,
`raw.events_b` (a copy), feeds a few layer-1 models, chosen so that they and their
descendants are under half of the project (82 of 200 models). Targets (issue 14), each a whole command run as
a subprocess, ratios from one run:
- new rows in `raw.events_b` only: a refresh rewrites what descends from it, at least 3x
  faster than a full `dbt build` on the same data (also timed: plain dbt's own slim build of
  what reads that source, `dbt build --select source:raw.events_b+`, the floor any tool
  built on dbt pays);
- new rows in both sources (everything rewritten): at most 1.15x a full `dbt build`, and
  the publish step itself (the switch) under 0.5 s;
- nothing changed: at most `dbt parse` (warm) + 1 s.

`test_incremental_refresh_and_data_version_costs` measures, at 1M and 10M rows
(RELEASEKIT_BENCH_BIG_ROWS), on DuckDB and PostgreSQL: reading a source's data version
(checksum and rowcount), copying an incremental model's live relation, and a refresh of
an incremental model after 1% new rows.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest

from releasekit.config.model import Connection
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.postgres import PostgresWarehouse

from .synthetic import SyntheticProject, generate_project
from .test_deploy_benchmark import BIN, MODELS, ROWS, releasekit_repo, timed, with_releasekit

pytestmark = pytest.mark.benchmark

BIG_ROWS = tuple(int(n) for n in os.environ.get("RELEASEKIT_BENCH_BIG_ROWS", "1000000,10000000").split(","))
_SOURCE = "source('raw', 'events')"


def _second_source(project: SyntheticProject) -> list[str]:
    """Point layer-1 models at `raw.events_b` while they and their descendants stay under
    half of the project; returns those layer-1 models."""
    chosen: list[str] = []
    covered: set[str] = set()
    limit = (len(project.models) - 1) // 2
    for name in sorted(project.layers[0], key=lambda n: len(project.descendants(n))):
        reach = covered | {name} | set(project.descendants(name))
        if len(reach) <= limit:
            chosen.append(name)
            covered = reach
    for name in chosen:
        path = project.model_path(name)
        path.write_text(path.read_text().replace(_SOURCE, "source('raw', 'events_b')"))
    sources = project.project_dir / "models" / "sources.yml"
    sources.write_text(sources.read_text() + "      - name: events_b\n")
    with duckdb.connect(str(project.db_path)) as con:
        con.execute("create table raw.events_b as select * from raw.events")
    return chosen


def _add_rows(project: SyntheticProject, table: str, share: float) -> None:
    with duckdb.connect(str(project.db_path)) as con:
        [(top, count)] = con.execute(f"select max(id), count(*) from raw.{table}").fetchall()
        con.execute(
            f"insert into raw.{table} select id + {top} + 1, user_id, event_type, amount, ts "
            f"from raw.{table} order by id limit {max(1, int(count * share))}"
        )


def _last_refresh(root: Path) -> dict[str, Any]:
    folder = root / ".releasekit" / "ledger" / "dev"
    entries = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return next(e for e in reversed(entries) if e["kind"] == "refresh")


def test_refresh_against_plain_dbt(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "project", models=MODELS, rows=ROWS)
    feeds = _second_source(project)
    with_releasekit(project)
    root, dbt, releasekit = project.project_dir, str(BIN / "dbt"), str(BIN / "releasekit")
    dbt_args = ["--profiles-dir", str(root), "--target-path", str(tmp_path / "dbt-target")]
    downstream = set(feeds) | {d for name in feeds for d in project.descendants(name)}

    figures: dict[str, float] = {}
    timed([releasekit, "deploy", "dev"], root)
    _add_rows(project, "events_b", 0.01)
    figures["dbt build (full)"] = timed([dbt, "build", *dbt_args], root)
    figures["releasekit refresh (one source)"] = timed([releasekit, "refresh", "dev"], root)
    one = _last_refresh(root)
    # Plain dbt's own best case for the same new data: a build of what reads that source.
    figures["dbt build --select source:raw.events_b+"] = timed(
        [dbt, "build", *dbt_args, "--select", "source:raw.events_b+"], root
    )
    _add_rows(project, "events", 0.01)
    _add_rows(project, "events_b", 0.01)
    figures["dbt build (full, again)"] = timed([dbt, "build", *dbt_args], root)
    figures["releasekit refresh (everything)"] = timed([releasekit, "refresh", "dev"], root)
    everything = _last_refresh(root)
    shutil.rmtree(tmp_path / "dbt-target")
    timed([dbt, "parse", *dbt_args], root)
    figures["dbt parse (warm)"] = timed([dbt, "parse", *dbt_args], root)
    figures["releasekit refresh (nothing changed)"] = timed([releasekit, "refresh", "dev"], root)

    full_build = (figures["dbt build (full)"] + figures["dbt build (full, again)"]) / 2
    report = {
        "models": MODELS,
        "rows": ROWS,
        "models_downstream_of_changed_source": len(downstream),
        "rewritten_one_source": len(one["built"]),
        "rewritten_everything": len(everything["built"]),
        "seconds": {k: round(v, 2) for k, v in figures.items()},
        "refresh_phases_one_source": one["refresh"]["seconds"],
        "refresh_phases_everything": everything["refresh"]["seconds"],
        "one_source_speedup_vs_full_dbt_build": round(
            full_build / figures["releasekit refresh (one source)"], 2
        ),
        "one_source_vs_dbt_build_of_what_reads_it": round(
            figures["releasekit refresh (one source)"] / figures["dbt build --select source:raw.events_b+"], 2
        ),
        "everything_vs_full_dbt_build": round(figures["releasekit refresh (everything)"] / full_build, 3),
        "nothing_changed_minus_warm_dbt_parse_seconds": round(
            figures["releasekit refresh (nothing changed)"] - figures["dbt parse (warm)"], 2
        ),
    }
    print("\n" + json.dumps(report, indent=2))
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "refresh_benchmark.json").write_text(
        json.dumps(report, indent=2)
    )
    assert len(one["built"]) == len(downstream)  # exactly what descends from the changed source
    assert len(downstream) < MODELS / 2


# --- incremental models and data versions at 1M and 10M rows ------------------------------

_INCREMENTAL = """\
{{ config(materialized='incremental', unique_key='id') }}
select id, user_id, amount from {{ source('raw', 'big') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}
"""


@contextmanager
def _postgres_database() -> Iterator[str]:
    name = f"rk_bench_{os.getpid()}_{int(time.time())}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def _incremental_project(root: Path, warehouse: str, database: str | None) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: big\nversion: '1.0'\nprofile: big\n")
    if warehouse == "duckdb":
        output = "type: duckdb\n      path: warehouse.duckdb\n      threads: 2"
    else:
        output = (
            "type: postgres\n      host: 127.0.0.1\n      port: 5432\n      user: postgres\n"
            f"      password: ''\n      dbname: {database}\n      schema: public\n      threads: 2"
        )
    (root / "profiles.yml").write_text(f"big:\n  target: dev\n  outputs:\n    dev:\n      {output}\n")
    (root / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: big\n"
    )
    (root / "models" / "big_incremental.sql").write_text(_INCREMENTAL)
    releasekit_repo(root, "one incremental model")


def _sql_runner(root: Path, warehouse: str, database: str | None) -> Callable[[str], None]:
    def run(statement: str) -> None:
        if warehouse == "duckdb":
            with duckdb.connect(str(root / "warehouse.duckdb")) as con:
                con.execute(statement)
            return
        con = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database)
        con.autocommit = True
        try:
            con.cursor().execute(statement)
        finally:
            con.close()

    return run


def _open(root: Path, warehouse: str, database: str | None) -> Any:
    if warehouse == "duckdb":
        return DuckDBWarehouse(Connection("duckdb", "warehouse", {"path": str(root / "warehouse.duckdb")}))
    settings = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "dbname": database}
    return PostgresWarehouse(Connection("postgres", str(database), settings))


def _measure_incremental(root: Path, warehouse: str, database: str | None, rows: int) -> dict[str, float]:
    _incremental_project(root, warehouse, database)
    run = _sql_runner(root, warehouse, database)
    run("create schema if not exists raw")
    series = f"range({rows})" if warehouse == "duckdb" else f"generate_series(0, {rows - 1}) as range"
    run(
        "create table raw.big as select range as id, range % 10007 as user_id, range % 997 as amount "
        f"from {series}"
    )
    releasekit = str(BIN / "releasekit")
    figures: dict[str, float] = {}
    figures["deploy (full build)"] = timed([releasekit, "deploy", "dev"], root)
    source = '"raw"."big"' if warehouse == "postgres" else '"warehouse"."raw"."big"'
    with _open(root, warehouse, database) as opened:
        for mode in ("checksum", "rowcount"):
            started = time.perf_counter()
            opened.data_version(source, mode)
            figures[f"data version ({mode})"] = time.perf_counter() - started
        [live] = [r for r in opened.relations("rk__physical") if r.startswith("big_incremental__")]
        started = time.perf_counter()
        opened.copy_relation("rk__physical", live, "copy_probe")
        figures["copy of the live relation"] = time.perf_counter() - started
        opened.drop_relations("rk__physical", ["copy_probe"])
    run(f"insert into raw.big select id + {rows}, user_id, amount from raw.big where id < {rows // 100}")
    figures["refresh (1% new rows)"] = timed([releasekit, "refresh", "dev"], root)
    entry = _last_refresh(root)
    assert entry["refresh"]["rows"] == {"model.big.big_incremental": rows + rows // 100}
    return {
        **{k: round(v, 3) for k, v in figures.items()},
        **{f"phase {k}": v for k, v in entry["refresh"]["seconds"].items()},
    }


@pytest.mark.parametrize("warehouse", ["duckdb", "postgres"])
def test_incremental_refresh_and_data_version_costs(tmp_path: Path, warehouse: str) -> None:
    report: dict[str, Any] = {"warehouse": warehouse}
    for rows in BIG_ROWS:
        root = tmp_path / f"rows_{rows}"
        if warehouse == "duckdb":
            report[str(rows)] = _measure_incremental(root, warehouse, None, rows)
            continue
        with _postgres_database() as database:
            report[str(rows)] = _measure_incremental(root, warehouse, database, rows)
    print("\n" + json.dumps(report, indent=2))
    out = Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path))
    (out / f"refresh_incremental_{warehouse}.json").write_text(json.dumps(report, indent=2))
