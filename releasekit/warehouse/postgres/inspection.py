"""What PostgresWarehouse reads for `releasekit check`, and the transaction it reads in.

Inspection (`columns`, `row_count`, `compare_rows`, `query`) runs in a REPEATABLE READ,
READ ONLY transaction that is always rolled back: PostgreSQL refuses every write in it, and
the rollback undoes even session settings a query changes (`set_config`). `query` also has
a statement timeout (QUERY_TIMEOUT_MS, 5 minutes), runs one statement only, wrapped as a
subquery (so INSERT or CREATE is a syntax error). Reads set no lock timeout: a switch holds
its locks for milliseconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg2

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import RowComparison, Statement
from releasekit.warehouse.inspection import Execute, Side, compare_relations, missing_relation
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.postgres.statements import (
    Cursor,
    StatementFailed,
    describe,
    execute,
    fetch,
    rollback,
)
from releasekit.warehouse.profile import profile_of, profile_query

T = TypeVar("T")

# Logic tests assert over consumer views; they are not batch jobs. One that runs longer is
# cancelled (SQLSTATE 57014) and reported, so a runaway test cannot hold a CI job for hours.
QUERY_TIMEOUT_MS = 300_000
_READ_ONLY_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
_QUERY_CANCELED = "57014"
_SYNTAX_ERROR = "42601"
_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# Built-in types without an equality operator: EXCEPT cannot compare them, their text it can.
_WITHOUT_EQUALITY = frozenset({"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"})


def read_only(con: Any, work: Callable[[Cursor], T], failure: str, *, timeout_ms: int | None = None) -> T:
    """Run `work` in a read-only transaction, rolled back whatever happens."""
    try:
        cur = con.cursor()
    except psycopg2.Error as exc:  # closed, or the connection broke
        raise _read_error(StatementFailed("connection", exc), failure, timeout_ms) from exc
    try:
        execute(cur, Statement("read-only transaction", _READ_ONLY_SQL))
        if timeout_ms is not None:
            execute(cur, Statement("statement timeout", f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        return work(cur)
    except StatementFailed as failed:
        raise _read_error(failed, failure, timeout_ms) from failed.cause
    finally:
        rollback(con)
        with contextlib.suppress(psycopg2.Error):
            cur.close()


def read_columns(cur: Cursor, schema: str, relation: str) -> list[tuple[str, str]]:
    rows = fetch(cur, "columns", _COLUMNS_SQL, (schema, relation))
    return [(str(name), str(data_type)) for name, data_type in rows]


def count_rows(cur: Cursor, schema: str, relation: str) -> int:
    if not read_columns(cur, schema, relation):
        raise missing_relation(schema, relation)
    return int(fetch(cur, "count", f"SELECT count(*) FROM {qualify(schema, relation)}")[0][0])


def profile(cur: Cursor, schema: str, relation: str) -> dict[str, float | None]:
    columns = read_columns(cur, schema, relation)
    if not columns:
        raise missing_relation(schema, relation)
    sql, names = profile_query(schema, relation, columns)
    return profile_of(names, fetch(cur, "profile", sql)[0])


def compare_rows(
    cur: Cursor,
    before: tuple[str, str],
    after: tuple[str, str],
    key: Sequence[str],
    columns: Sequence[str],
    examples: int,
) -> RowComparison:
    old, new = (Side(name, dict(read_columns(cur, *name))) for name in (before, after))
    execute = executor(cur)
    return compare_relations(execute, old, new, key, columns, examples=examples, as_text=_without_equality)


def executor(cur: Cursor) -> Execute:
    # fetch passes no parameters, so psycopg2 leaves a `%` in the SQL alone.
    def execute(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        rows = fetch(cur, "query", sql)
        return [column.name for column in cur.description], rows

    return execute


def _without_equality(data_type: str) -> bool:
    return data_type.removesuffix("[]") in _WITHOUT_EQUALITY


def _read_error(failed: StatementFailed, failure: str, timeout_ms: int | None) -> WarehouseError:
    hint = None
    if failed.pgcode == _QUERY_CANCELED and timeout_ms is not None:
        hint = f"it ran longer than the statement timeout ({timeout_ms} ms): make it cheaper"
    elif failed.pgcode == _SYNTAX_ERROR:
        hint = "a query is one SELECT (WITH ... SELECT is fine); INSERT, CREATE and other writes are refused"
    return WarehouseError(f"{failure}: {describe(failed.cause)}", hint=hint)
