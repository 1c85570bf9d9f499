"""The adapter registry: warehouse type -> adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import Connection
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.registry import ADAPTERS, connect

from .support import duckdb_connection


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
