"""Fixtures for the warehouse tests: real databases, one per test.

The contract suite asks for `warehouse` and `sql`; each adapter in ADAPTER_TYPES supplies
both. `sql` runs statements on a second connection, the way dbt or a consumer would, to
set up physical relations and to look at what the warehouse holds.

DuckDB gets a file in the test's temp dir. PostgreSQL gets a fresh database on the server
at 127.0.0.1:5432 (`rk_test_<uuid>`, dropped WITH (FORCE) afterwards), so tests are
isolated from each other and from other xdist workers. The server is reached as every
PostgreSQL test reaches it (postgres_support.server: skip without it, fail under CI).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest

from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.registry import connect
from tests.support.postgres import database_on, server
from tests.support.warehouse import (
    Backend,
    MakeTable,
    RunSQL,
    Schemas,
    duckdb_connection,
    postgres_connection,
    postgres_dsn,
    run_sql,
)

ADAPTER_TYPES = ["duckdb", "postgres"]
_MARKS = {"postgres": [pytest.mark.postgres]}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """An autocommit connection to the server's `postgres` database, made once per worker."""
    with server() as con:
        yield con


@pytest.fixture
def postgres_database(postgres_server: Any) -> Iterator[str]:
    """A fresh, empty database for one test."""
    with database_on(postgres_server) as name:
        yield name


def _duckdb_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "warehouse.duckdb"
    warehouse = connect(duckdb_connection(path))
    # Same process, same file: DuckDB shares the database between the two connections.
    side = duckdb.connect(str(path))
    try:
        yield Backend(warehouse, lambda sql: side.execute(sql).fetchall())
    finally:
        side.close()
        warehouse.close()


def _postgres_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    database = request.getfixturevalue("postgres_database")
    warehouse = connect(postgres_connection(database))
    side = psycopg2.connect(**postgres_dsn(database))
    side.autocommit = True
    try:
        yield Backend(warehouse, functools.partial(run_sql, side))
    finally:
        side.close()
        warehouse.close()


_BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Iterator[Backend]]] = {
    "duckdb": _duckdb_backend,
    "postgres": _postgres_backend,
}


@pytest.fixture(params=[pytest.param(kind, marks=_MARKS.get(kind, ())) for kind in ADAPTER_TYPES])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def warehouse(backend: Backend) -> Warehouse:
    return backend.warehouse


@pytest.fixture
def sql(backend: Backend) -> RunSQL:
    return backend.sql


@pytest.fixture
def schemas() -> Schemas:
    # Unique names catch an adapter that assumes fixed ones. Kept short: the contract's
    # hostile names append 47 bytes and must still fit PostgreSQL's 63.
    suffix = uuid.uuid4().hex[:8]
    return Schemas(env=f"env_{suffix}", physical=f"rk__p_{suffix}")


@pytest.fixture
def make_table(sql: RunSQL) -> MakeTable:
    """Create a physical relation holding one row: release_id."""

    def make(schema: str, name: str, release_id: int) -> None:
        sql(f"CREATE SCHEMA IF NOT EXISTS {qualify(schema)}")
        sql(f"CREATE TABLE {qualify(schema, name)} AS SELECT {release_id} AS release_id")

    return make


HOLD_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process that has the database file open."""
    path = tmp_path / "held.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield path, proc
    finally:
        proc.kill()
        proc.wait()
