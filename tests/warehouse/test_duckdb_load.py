"""Loading a DuckDB file from outside dbt (the quickstart's raw data)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.duckdb_load import TableRows, append_rows, count_rows

ORDERS = (("id", "INTEGER"), ("ordered_at", "TIMESTAMP"), ("note", "VARCHAR"))


def test_append_creates_the_tables_then_appends_typed_rows(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    append_rows(path, "raw", [TableRows("orders", ORDERS, [(1, "2025-07-01 09:00:00", "first")])])
    append_rows(path, "raw", [TableRows("orders", ORDERS, [(2, "2025-07-02 10:30:00", None)])])

    with duckdb.connect(str(path)) as con:
        con.execute("create view raw.recent as select * from raw.orders where id > 1")
        types = con.execute("select data_type from duckdb_columns() where table_name = 'orders'").fetchall()
        read = "select id, cast(ordered_at as varchar), note from raw.orders order by id"
        rows = con.execute(read).fetchall()
    assert types == [("INTEGER",), ("TIMESTAMP",), ("VARCHAR",)]
    assert rows == [(1, "2025-07-01 09:00:00", "first"), (2, "2025-07-02 10:30:00", None)]
    assert count_rows(path, "raw", "recent") == 1  # a view counts too


def test_a_load_is_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    good = TableRows("orders", ORDERS, [(1, "2025-07-01 09:00:00", "kept out")])
    bad = TableRows("items", (("id", "INTEGER"),), [("not a number",)])

    with pytest.raises(WarehouseError, match="could not load rows"):
        append_rows(path, "raw", [good, bad])

    with duckdb.connect(str(path)) as con:
        tables = con.execute("select count(*) from duckdb_tables() where schema_name = 'raw'").fetchone()
    assert tables == (0,)


def test_a_file_another_process_holds_is_refused(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, proc = holder

    with pytest.raises(WarehouseBusyError, match=f"process {proc.pid}"):
        append_rows(path, "raw", [TableRows("orders", ORDERS, [])])
