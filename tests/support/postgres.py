"""PostgreSQL for the engine and branch-environment tests: a fresh database per test (or
per module), the shop project's profiles.yml pointed at it, and readers that look at the
warehouse the way a consumer would (the PostgreSQL twin of warehouse_reads.py).

The server is the one tests/warehouse uses (127.0.0.1:5432, user postgres, trust auth).
`server()` is the one place every test that needs it reaches it: without it the test skips,
except under CI (env var CI set), where it fails and never skips.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from releasekit.warehouse.base import MARKER_VIEW
from releasekit.warehouse.naming import qualify, quote
from tests.support.warehouse import PG_HOST, PG_PORT, PG_USER, postgres_dsn, run_sql

__all__ = [
    "PG_HOST",
    "PG_PORT",
    "PG_USER",
    "Pg",
    "database_on",
    "fresh_database",
    "postgres_profile",
    "server",
]

PHYSICAL = "rk__physical"


def postgres_profile(database: str, *, threads: int = 4) -> str:
    """The shop project's profiles.yml, on PostgreSQL (`make_repo(..., profile=...)`)."""
    return (
        "shop:\n"
        "  target: dev\n"
        "  outputs:\n"
        "    dev:\n"
        "      type: postgres\n"
        f"      host: {PG_HOST}\n"
        f"      port: {PG_PORT}\n"
        f"      user: {PG_USER}\n"
        '      password: ""\n'
        f"      dbname: {database}\n"
        "      schema: public\n"
        f"      threads: {threads}\n"
    )


@contextlib.contextmanager
def server() -> Iterator[Any]:
    """An autocommit connection to the server's `postgres` database; skips the test
    without a server, fails it under CI."""
    try:
        con = psycopg2.connect(**postgres_dsn("postgres"))
    except psycopg2.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_HOST}:{PG_PORT}: {exc}")
    con.autocommit = True
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def database_on(server_connection: Any) -> Iterator[str]:
    """A new, empty database (`rk_test_<uuid>`) made over a `server()` connection, dropped
    WITH (FORCE) afterwards."""
    name = f"rk_test_{uuid.uuid4().hex}"
    run_sql(server_connection, f"CREATE DATABASE {quote(name)}")
    try:
        yield name
    finally:
        run_sql(server_connection, f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on its own server connection (see `database_on`)."""
    with server() as con, database_on(con) as name:
        yield name


def connect(database: str) -> Any:
    """An autocommit psycopg2 connection to `database`, as a consumer would open one."""
    con = psycopg2.connect(**postgres_dsn(database), application_name="releasekit-tests")
    con.autocommit = True
    return con


# pg_depend, not the view's text, says what a view reads.
_VIEW_READS_SQL = """
SELECT DISTINCT v.relname, tn.nspname, t.relname
FROM pg_class v
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_rewrite r ON r.ev_class = v.oid
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE vn.nspname = %s AND v.relkind = 'v'
"""
_RELATIONS_SQL = """
SELECT n.nspname, c.relname, CASE c.relkind WHEN 'v' THEN pg_get_viewdef(c.oid) ELSE 'table' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""
_SCHEMAS_SQL = """
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname !~ '^pg_'
"""


class Pg:
    """Reads one database on its own autocommit connection (the twin of warehouse_reads)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._con: Any = None

    def _connection(self) -> Any:
        if self._con is None or self._con.closed:
            self._con = connect(self.database)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall()) if cur.description is not None else []

    def views(self, schema: str) -> dict[str, str]:
        """view name -> the rk__physical relation it reads (the marker excluded)."""
        reads: dict[str, set[tuple[str, str]]] = {}
        for view, source_schema, relation in self.sql(_VIEW_READS_SQL, (schema,)):
            reads.setdefault(view, set()).add((source_schema, relation))
        return {
            view: relation
            for view, found in reads.items()
            if view != MARKER_VIEW
            for source_schema, relation in found
            if source_schema == PHYSICAL and len(found) == 1
        }

    def relations(self) -> dict[str, dict[str, str]]:
        """schema -> relation -> 'table' or (for views) its definition."""
        result: dict[str, dict[str, str]] = {}
        for schema, name, what in self.sql(_RELATIONS_SQL):
            result.setdefault(schema, {})[name] = what
        return result

    def physical(self) -> set[str]:
        return set(self.relations().get(PHYSICAL, {}))

    def schemas(self) -> set[str]:
        return {name for (name,) in self.sql(_SCHEMAS_SQL)}

    def marker(self, schema: str) -> tuple[Any, ...]:
        [row] = self.sql(f"SELECT release_id, env, git_sha FROM {qualify(schema, MARKER_VIEW)}")
        return tuple(row)

    def every_view_selects(self, schema: str) -> None:
        for name in self.views(schema):
            self.sql(f"SELECT * FROM {qualify(schema, name)}")
