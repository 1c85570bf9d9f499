"""Reading a test repository's DuckDB warehouse the way a consumer would, after releasekit
has returned (DuckDB allows one process per file: each read opens and closes it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

_VIEW_TARGET = re.compile(r'FROM\s+"?rk__physical"?\."?(?P<relation>[A-Za-z0-9_]+)"?', re.IGNORECASE)


@contextmanager
def warehouse(repo: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(repo / "warehouse.duckdb"))
    try:
        yield con
    finally:
        con.close()


def sql(repo: Path, statement: str) -> list[tuple[Any, ...]]:
    with warehouse(repo) as con:
        return con.execute(statement).fetchall()


def views(repo: Path, schema: str) -> dict[str, str]:
    """view name -> the rk__physical relation it selects from (the marker excluded)."""
    with warehouse(repo) as con:
        rows = con.execute(
            "select view_name, sql from duckdb_views() where schema_name = ? and not internal", [schema]
        ).fetchall()
    found = {name: _VIEW_TARGET.search(text) for name, text in rows if name != "_releasekit_release"}
    return {name: match["relation"] for name, match in found.items() if match}


def relations(repo: Path) -> dict[str, dict[str, str]]:
    """schema -> relation -> 'table' or (for views) its SQL."""
    found = sql(
        repo,
        "select schema_name, table_name, 'table' from duckdb_tables() where not internal "
        "union all select schema_name, view_name, sql from duckdb_views() where not internal",
    )
    result: dict[str, dict[str, str]] = {}
    for schema, name, what in found:
        result.setdefault(schema, {})[name] = what
    return result


def physical(repo: Path) -> set[str]:
    return set(relations(repo).get("rk__physical", {}))


def marker(repo: Path, schema: str) -> tuple[Any, ...]:
    [row] = sql(repo, f"select release_id, env, git_sha from {schema}._releasekit_release")
    return tuple(row)


def every_view_selects(repo: Path, schema: str) -> None:
    for name in views(repo, schema):
        sql(repo, f"select * from {schema}.{name}")
