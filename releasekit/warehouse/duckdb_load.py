"""Loading a DuckDB file from outside dbt, as a shop's loader does: the quickstart's raw data.

releasekit never writes source tables itself; the demo needs something that does, so that
`releasekit refresh` has new data to find. Each call opens the file, does its work in one
transaction and closes it again: DuckDB allows one process per file, so a load must run
when no releasekit run holds it (a file another process holds is a WarehouseBusyError).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from releasekit.errors import WarehouseError
from releasekit.warehouse.duckdb import open_database
from releasekit.warehouse.naming import qualify, quote

Row = tuple[object, ...]


@dataclass(frozen=True)
class TableRows:
    """Rows to append to one table; `columns` are (name, DuckDB type), in row order."""

    name: str
    columns: tuple[tuple[str, str], ...]
    rows: Sequence[Row]


def append_rows(path: Path, schema: str, tables: Sequence[TableRows]) -> None:
    """Append each table's rows to `schema`.`name` in the DuckDB file `path`, creating the
    schema and tables when they do not exist yet, all in one transaction."""
    statements: list[tuple[str, list[object]]] = [(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}", [])]
    for table in tables:
        statements += _table_statements(schema, table)
    connection = open_database(str(path), {})
    try:
        connection.execute("BEGIN TRANSACTION")
        for sql, params in statements:
            connection.execute(sql, params)
        connection.execute("COMMIT")
    except duckdb.Error as exc:
        raise WarehouseError(f"could not load rows into schema {schema!r} of {path}: {exc}") from exc
    finally:
        connection.close()


def count_rows(path: Path, schema: str, relation: str) -> int:
    """The rows `schema`.`relation` (a table or a view) holds now in the DuckDB file `path`."""
    connection = open_database(str(path), {})
    try:
        row = connection.execute(f"SELECT count(*) FROM {qualify(schema, relation)}").fetchone()
    except duckdb.Error as exc:
        raise WarehouseError(f"could not count the rows of {schema}.{relation} in {path}: {exc}") from exc
    finally:
        connection.close()
    return int(row[0]) if row else 0


def _table_statements(schema: str, table: TableRows) -> list[tuple[str, list[object]]]:
    name = qualify(schema, table.name)
    declared = ", ".join(f"{quote(column)} {kind}" for column, kind in table.columns)
    statements: list[tuple[str, list[object]]] = [(f"CREATE TABLE IF NOT EXISTS {name} ({declared})", [])]
    if table.rows:
        # One list per column, unnested side by side: one statement, whatever the row count
        # (row-by-row inserts take seconds for a few thousand rows).
        values = ", ".join(
            f"CAST(unnest(${i}) AS {kind})" for i, (_, kind) in enumerate(table.columns, start=1)
        )
        columns = [list(column) for column in zip(*table.rows, strict=True)]
        statements.append((f"INSERT INTO {name} SELECT {values}", list(columns)))
    return statements
