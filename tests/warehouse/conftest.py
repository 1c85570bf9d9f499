"""Fixtures for the warehouse tests: real databases in temp dirs, one per test.

The contract suite asks for `warehouse` and `sql`; each adapter in ADAPTER_TYPES supplies
both. `sql` runs statements on a second connection, the way dbt or a consumer would, to
set up physical relations and to look at what the warehouse holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.registry import connect

from .support import Backend, MakeTable, RunSQL, Schemas, duckdb_connection

ADAPTER_TYPES = ["duckdb"]


def _duckdb_backend(tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "warehouse.duckdb"
    warehouse = connect(duckdb_connection(path))
    # Same process, same file: DuckDB shares the database between the two connections.
    side = duckdb.connect(str(path))
    try:
        yield Backend(warehouse, lambda sql: side.execute(sql).fetchall())
    finally:
        side.close()
        warehouse.close()


_BACKENDS: dict[str, Callable[[Path], Iterator[Backend]]] = {"duckdb": _duckdb_backend}


@pytest.fixture(params=ADAPTER_TYPES)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _BACKENDS[request.param](tmp_path)


@pytest.fixture
def warehouse(backend: Backend) -> Warehouse:
    return backend.warehouse


@pytest.fixture
def sql(backend: Backend) -> RunSQL:
    return backend.sql


@pytest.fixture
def schemas() -> Schemas:
    # Unique names so the suite also runs against a shared server (PostgreSQL).
    suffix = uuid.uuid4().hex[:8]
    return Schemas(env=f"env_{suffix}", physical=f"rk__physical_{suffix}")


@pytest.fixture
def make_table(sql: RunSQL) -> MakeTable:
    """Create a physical relation holding one row: release_id."""

    def make(schema: str, name: str, release_id: int) -> None:
        sql(f"CREATE SCHEMA IF NOT EXISTS {qualify(schema)}")
        sql(f"CREATE TABLE {qualify(schema, name)} AS SELECT {release_id} AS release_id")

    return make
