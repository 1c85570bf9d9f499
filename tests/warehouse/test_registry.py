"""The adapter registry: warehouse type -> adapter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import Connection
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.registry import ADAPTERS, PACKAGES, connect
from tests.support.warehouse import duckdb_connection


def test_duckdb_is_registered(tmp_path: Path) -> None:
    assert ADAPTERS["duckdb"] is DuckDBWarehouse
    warehouse = connect(duckdb_connection(tmp_path / "w.duckdb"))
    try:
        assert isinstance(warehouse, DuckDBWarehouse)
    finally:
        warehouse.close()


def test_unknown_type_names_what_is_supported() -> None:
    with pytest.raises(WarehouseError) as raised:
        connect(Connection(type="snowflake", database="analytics"))

    message = str(raised.value)
    assert "'snowflake'" in message and "duckdb" in message
    assert "releasekit[postgres]" in message


def test_unknown_type_names_each_supported_type_with_its_own_package() -> None:
    with pytest.raises(WarehouseError) as raised:
        connect(Connection(type="snowflake", database="analytics"))

    hint = raised.value.hint or ""
    assert "duckdb needs dbt-duckdb" in hint
    assert "postgres needs dbt-postgres" in hint and "releasekit[postgres]" in hint
    # Every registered type says what it needs: a new adapter cannot forget to.
    assert set(PACKAGES) == set(ADAPTERS)


def test_postgres_without_its_driver_names_the_postgres_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if psycopg2 were not installed: a None entry makes its import fail.
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    for name in [name for name in sys.modules if name.startswith("releasekit.warehouse.postgres")]:
        monkeypatch.delitem(sys.modules, name)

    with pytest.raises(WarehouseError) as raised:
        connect(Connection(type="postgres", database="analytics"))

    assert "psycopg2 is not installed" in str(raised.value)
    assert raised.value.hint is not None and "dbt-postgres" in raised.value.hint
    assert "releasekit[postgres]" in raised.value.hint and "duckdb" not in raised.value.hint
