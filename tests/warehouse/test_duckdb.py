"""What only DuckDB needs: opening files, one process per file, concurrent readers."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import duckdb
import pytest

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, Capabilities, Connection
from releasekit.warehouse.duckdb import DuckDBWarehouse, _view_target
from releasekit.warehouse.naming import qualify
from tests.support.warehouse import duckdb_connection, make_marker


def test_capabilities() -> None:
    assert DuckDBWarehouse.capabilities == Capabilities(transactional_ddl=True, single_process=True)


def test_a_file_held_by_another_process_fails_fast_and_names_it(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, proc = holder

    with pytest.raises(WarehouseBusyError) as raised:
        DuckDBWarehouse(duckdb_connection(path))

    assert proc.poll() is None, "refused only once the holder had gone: it waited"
    message = str(raised.value)
    assert str(path) in message and f"process {proc.pid}" in message
    assert "time.sleep" in message  # its command line, read from /proc
    assert "one writing process per file" in message


def test_two_warehouses_in_one_process_share_the_file(tmp_path: Path) -> None:
    connection = duckdb_connection(tmp_path / "w.duckdb")
    with DuckDBWarehouse(connection) as first, DuckDBWarehouse(connection) as second:
        first.switch("prod", {}, physical_schema="rk__physical", marker=make_marker(4))

        assert second.read_marker("prod") == make_marker(4)


def test_in_memory_database_works() -> None:
    with DuckDBWarehouse(duckdb_connection(":memory:")) as warehouse:
        warehouse.switch("dev", {}, physical_schema="rk__physical", marker=make_marker(1))

        assert warehouse.relations("dev") == {MARKER_VIEW}


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database " * 500)

    with pytest.raises(WarehouseError, match=str(path)) as raised:
        DuckDBWarehouse(duckdb_connection(path))

    assert not isinstance(raised.value, WarehouseBusyError)


def test_a_damaged_file_is_named_with_what_happened_and_the_way_back(tmp_path: Path) -> None:
    # What a process killed during a DuckDB checkpoint can leave: a block whose checksum
    # does not match its bytes (the first block after the file's three headers).
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id FROM range(100000)")
    with path.open("r+b") as file:
        file.seek(3 * 4096 + 100)
        file.write(b"\xff" * 64)

    with pytest.raises(WarehouseError) as raised:
        DuckDBWarehouse(duckdb_connection(path))

    assert f"the DuckDB database {path} is damaged: " in raised.value.message
    assert "Corrupt database file" in raised.value.message
    assert raised.value.hint is not None and "deploy each environment again" in raised.value.hint


@pytest.mark.parametrize("settings", [{}, {"path": ""}, {"path": "relative/w.duckdb"}])
def test_a_missing_or_relative_path_is_refused(settings: dict[str, str]) -> None:
    with pytest.raises(WarehouseError, match=r"path|file"):
        DuckDBWarehouse(Connection(type="duckdb", database="w", settings=settings))


def test_close_is_idempotent_and_later_use_is_a_warehouse_error(tmp_path: Path) -> None:
    with DuckDBWarehouse(duckdb_connection(tmp_path / "w.duckdb")) as warehouse:
        pass
    warehouse.close()

    with pytest.raises(WarehouseError):
        warehouse.relations("prod")


def test_a_relation_in_another_attached_database_is_not_listed(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with DuckDBWarehouse(duckdb_connection(path)) as warehouse:
        side = duckdb.connect(str(path))
        side.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
        side.execute("CREATE SCHEMA other.prod")
        side.execute("CREATE TABLE other.prod.elsewhere AS SELECT 1 AS x")

        assert warehouse.relations("prod") == set()
        side.close()


# --- atomicity under concurrent reads -------------------------------------------------

VIEWS = [f"model_{i:02d}" for i in range(50)]
ENV = "prod"
PHYSICAL = "rk__physical"


def _release(release_id: int) -> dict[str, str]:
    return {view: f"{view}__r{release_id}" for view in VIEWS}


def _build_releases(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA {PHYSICAL}")
    for release_id in (1, 2):
        for relation in _release(release_id).values():
            table = qualify(PHYSICAL, relation)
            con.execute(f"CREATE TABLE {table} AS SELECT {release_id} AS release_id")
    con.close()


def _read_release(con: duckdb.DuckDBPyConnection) -> set[int]:
    """What one reader transaction sees: the marker's release and every view's."""
    con.execute("BEGIN TRANSACTION")
    try:
        marker = con.execute(f"SELECT release_id FROM {qualify(ENV, MARKER_VIEW)}").fetchall()
        seen = {int(marker[0][0])}
        for view in VIEWS:
            seen.add(int(con.execute(f"SELECT release_id FROM {qualify(ENV, view)}").fetchall()[0][0]))
        return seen
    finally:
        con.execute("COMMIT")


def _switch_back_and_forth(warehouse: DuckDBWarehouse, switches: int) -> None:
    for number in range(switches):
        release_id = 1 + number % 2
        warehouse.switch(ENV, _release(release_id), physical_schema=PHYSICAL, marker=make_marker(release_id))


def test_readers_never_see_a_mix_of_releases(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    _build_releases(path)
    with DuckDBWarehouse(duckdb_connection(path)) as warehouse:
        warehouse.switch(ENV, _release(1), physical_schema=PHYSICAL, marker=make_marker(1))
        # DuckDB allows one process per file: the reader is another connection in this one.
        reader = duckdb.connect(str(path))
        writer = threading.Thread(target=_switch_back_and_forth, args=(warehouse, 100))
        writer.start()
        reads: list[set[int]] = []
        while writer.is_alive() or len(reads) < 5:
            reads.append(_read_release(reader))
        writer.join()
        reader.close()

    assert all(len(seen) == 1 for seen in reads), [seen for seen in reads if len(seen) > 1]
    assert {1, 2} <= set().union(*reads), "the reader never overlapped the switches"


def test_opens_beside_a_connection_with_the_profiles_config_options(tmp_path: Path) -> None:
    # dbt-duckdb, in this same process, opens the file with the profile's config_options.
    path = tmp_path / "w.duckdb"
    dbt_side = duckdb.connect(str(path), config={"threads": 2})
    settings = {"path": str(path), "config_options": {"threads": 2}}
    with DuckDBWarehouse(Connection(type="duckdb", database="w", settings=settings)) as warehouse:
        assert warehouse.relations("main") == set()
    dbt_side.close()


@pytest.mark.parametrize(
    ("sql", "relation"),
    [
        (
            "CREATE VIEW prod.orders AS SELECT * FROM rk__physical.orders__a1b2c3d4;",
            "orders__a1b2c3d4",
        ),
        ('CREATE OR REPLACE VIEW "prod"."o" AS SELECT * FROM "rk"."a""b c"', 'a"b c'),
        ("create view w.prod.o as\n  select *\n  from w.rk.ünï", "ünï"),
        ("CREATE VIEW prod.o AS SELECT release_id FROM rk.t;", None),
        ("CREATE VIEW prod.o AS SELECT * FROM rk.t WHERE true;", None),
        ("CREATE VIEW prod.o AS SELECT * FROM t;", None),
    ],
)
def test_view_sql_is_read_in_the_spellings_duckdb_stores(sql: str, relation: str | None) -> None:
    # Older DuckDB versions kept the text as written; 2.x re-renders it. Both must parse,
    # since garbage collection keeps what view_targets reports.
    assert _view_target(sql) == relation
