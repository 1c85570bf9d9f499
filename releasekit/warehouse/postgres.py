"""PostgreSQL, through psycopg2 (which dbt-postgres installs).

This module holds the connection and the transactions that work runs in (retried on lock
conflicts). Beside it: its settings (postgres_settings), the switch plan (postgres_switch)
and the grants it gives (postgres_grants), what the catalog says (postgres_catalog), the
read-only inspection (postgres_inspection), and the statements they all run
(postgres_statements).

Locks. DROP VIEW takes an ACCESS EXCLUSIVE lock on each old view: the switch waits for
readers that hold one, and new readers queue behind it. `SET LOCAL lock_timeout` (setting
`lock_timeout_ms`, default 500) bounds that wait, so no reader is blocked longer; the switch
rolls back, retries with backoff, and after ATTEMPTS raises WarehouseBusyError naming the
sessions that hold the schema. Keep the timeout under the server's deadlock_timeout (1 s by
default): a reader that holds one changed view and then wants another the switch already
holds deadlocks with it, and the lock timeout makes the switch, not the reader, give way.
The price of strict consistency: a transaction or query kept open on a changed view for
longer than the lock timeout, or readers that never pause and take the views in another
order than the switch, make the switch give up (nothing changed; run it again later).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import psycopg2

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import (
    SWITCH_HINT,
    Capabilities,
    Connection,
    QueryResult,
    ReleaseMarker,
    RowComparison,
    check_switch_names,
)
from releasekit.warehouse.inspection import one_statement, run_query
from releasekit.warehouse.naming import qualify, quote
from releasekit.warehouse.postgres_catalog import (
    _DROP_KINDS,
    _drop_relations,
    _drop_schema,
    _our_views,
    _read_marker,
    _readers,
    _relations,
)
from releasekit.warehouse.postgres_grants import _grants
from releasekit.warehouse.postgres_inspection import (
    QUERY_TIMEOUT_MS,
    _columns,
    _compare,
    _executor,
    _read_only,
    _row_count,
)
from releasekit.warehouse.postgres_settings import DEFAULT_LOCK_TIMEOUT_MS, _read_settings, _Settings
from releasekit.warehouse.postgres_statements import (
    Cursor,
    _commit,
    _describe,
    _execute,
    _fetch,
    _rollback,
    _StatementFailed,
    _Step,
)
from releasekit.warehouse.postgres_switch import _byte_length, _Switch, staging_schema

__all__ = ["ATTEMPTS", "DEFAULT_LOCK_TIMEOUT_MS", "QUERY_TIMEOUT_MS", "PostgresWarehouse", "staging_schema"]

T = TypeVar("T")

ATTEMPTS = 5
_BACKOFF_S = 0.05
_LOCK_CONFLICTS = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected
_CONNECT_HINT = (
    "check that the server runs and is reachable, and the host, port, user, password and "
    "dbname of the dbt profile's target"
)

_LOCK_HOLDERS_SQL = """
SELECT a.pid, coalesce(a.usename, '?'), coalesce(a.application_name, ''), coalesce(a.state, '?'),
       coalesce(extract(epoch FROM now() - a.xact_start)::int, 0), string_agg(DISTINCT c.relname, ', ')
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname = ANY(%s)
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY 1, 2, 3, 4, 5 ORDER BY 5 DESC LIMIT 5
"""


class PostgresWarehouse:
    """One PostgreSQL database, reached through one connection (autocommit off)."""

    capabilities: Capabilities = Capabilities(transactional_ddl=True, schema_rename=True, grants=True)

    def __init__(self, connection: Connection, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._settings = _read_settings(connection)
        self._sleep = sleep
        self._con = _connect(self._settings)
        self._max_bytes = self._prepare_session()
        self.capabilities = dataclasses.replace(self.capabilities, max_identifier_bytes=self._max_bytes)

    def __enter__(self) -> PostgresWarehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def relations(self, schema: str) -> set[str]:
        kinds = self._run(lambda cur: _relations(cur, schema), f"could not list relations in {schema!r}")
        return {name for name, (kind, _) in kinds.items() if kind in _DROP_KINDS}

    def switch(
        self,
        schema: str,
        views: Mapping[str, str],
        *,
        physical_schema: str,
        marker: ReleaseMarker,
        drop: Iterable[str] = (),
        grants: Mapping[str, Sequence[str]] = {},
    ) -> None:
        dropped = tuple(dict.fromkeys(drop))
        check_switch_names(views, dropped)
        for kind, name in [("schema", schema), ("schema", physical_schema), *_names(views)]:
            self._check_fits(kind, name)
        wanted = _grants(grants)
        plan = _Switch(
            schema,
            staging_schema(schema, self._max_bytes),
            physical_schema,
            dict(views),
            dropped,
            marker,
            wanted,
        )

        def apply(cur: Cursor) -> None:
            # Through this module's _execute: a test patches it to hold a switch mid-way.
            for step in plan.steps(cur):
                _execute(cur, step)

        self._run(apply, plan.failure, hint=SWITCH_HINT, contended=(schema, physical_schema))

    def read_marker(self, schema: str) -> ReleaseMarker | None:
        return self._run(lambda cur: _read_marker(cur, schema), f"could not read the marker of {schema!r}")

    def view_targets(self, schema: str) -> dict[str, str]:
        targets = self._run(lambda cur: _our_views(cur, schema), f"could not list the views of {schema!r}")
        return {name: relation for name, (_, relation) in targets.items()}

    def drop_relations(self, schema: str, names: Iterable[str]) -> None:
        wanted = list(dict.fromkeys(names))
        if wanted:
            self._run(
                lambda cur: _drop_relations(cur, schema, wanted),
                f"could not drop relations in schema {schema!r}",
                contended=(schema,),
            )

    def readers(self, schema: str, names: Iterable[str]) -> dict[str, list[str]]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        return self._run(lambda cur: _readers(cur, schema, wanted), f"could not list readers in {schema!r}")

    def drop_schema(self, schema: str) -> None:
        if _byte_length(schema) <= self._max_bytes:  # a longer name cannot exist
            self._run(
                lambda cur: _drop_schema(cur, schema),
                f"could not drop schema {schema!r}",
                contended=(schema,),
            )

    def close(self) -> None:
        self._con.close()

    def _prepare_session(self) -> int:
        # string_literal relies on standard_conforming_strings; a database may turn it off.
        steps = [_Step("session", "SET standard_conforming_strings = on")]
        if self._settings.role:
            steps.append(_Step(f"role {self._settings.role!r}", f"SET ROLE {quote(self._settings.role)}"))

        def prepare(cur: Cursor) -> int:
            for step in steps:
                _execute(cur, step)
            return int(_fetch(cur, "session", "SHOW max_identifier_length")[0][0])

        try:
            return self._run(prepare, f"could not prepare the session on {self._settings.where}")
        except WarehouseError:
            self.close()
            raise

    def _check_fits(self, kind: str, name: str) -> None:
        size = _byte_length(name)
        if size > self._max_bytes:
            raise WarehouseError(
                f"the {kind} name {name!r} is {size} bytes; PostgreSQL cuts names at "
                f"{self._max_bytes} bytes, so it would silently become another name",
                hint="use a shorter name; nothing changed",
            )

    def _run(
        self,
        work: Callable[[Cursor], T],
        failure: str,
        *,
        hint: str | None = None,
        contended: Sequence[str] = (),
    ) -> T:
        """Run `work` in one transaction under the lock timeout; retry lock conflicts."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._attempt(work)
            except _StatementFailed as failed:
                if failed.pgcode not in _LOCK_CONFLICTS:
                    raise _statement_error(failed, failure, hint) from failed.cause
                if attempt == ATTEMPTS:
                    raise self._busy_error(failure, contended) from failed.cause
            self._sleep(_BACKOFF_S * 2 ** (attempt - 1) * (1 + random.random()))
        raise AssertionError("unreachable")

    def _attempt(self, work: Callable[[Cursor], T]) -> T:
        try:
            cur = self._con.cursor()
        except psycopg2.Error as exc:  # closed, or the connection broke
            raise _StatementFailed("connection", exc) from exc
        try:
            _execute(cur, _Step("lock timeout", f"SET LOCAL lock_timeout = {self._settings.lock_timeout_ms}"))
            result = work(cur)
            _commit(self._con)
            return result
        except BaseException:
            _rollback(self._con)
            raise
        finally:
            with contextlib.suppress(psycopg2.Error):
                cur.close()

    def _busy_error(self, failure: str, contended: Sequence[str]) -> WarehouseBusyError:
        timeout = self._settings.lock_timeout_ms
        holders = self._lock_holders(contended)
        held = "; ".join(holders) if holders else "none holds them any more"
        return WarehouseBusyError(
            f"{failure}: other sessions held locks on schema {', '.join(map(repr, contended))} "
            f"longer than lock_timeout ({timeout} ms), {ATTEMPTS} attempts: {held}",
            hint=(
                "readers that keep a transaction open on the schema block it; wait for them or "
                "end them (SELECT pg_terminate_backend(pid)), or raise warehouse.lock_timeout_ms in "
                "releasekit.yml; nothing changed"
            ),
        )

    def _lock_holders(self, schemas: Sequence[str]) -> list[str]:
        if not schemas:
            return []
        try:
            rows = self._attempt(lambda cur: _fetch(cur, "locks", _LOCK_HOLDERS_SQL, (list(schemas),)))
        except _StatementFailed:
            return []  # the message is still true without the names
        return [
            f"pid {pid} (user {user}, application {app!r}, {state}, transaction open {age} s) on {rels}"
            for pid, user, app, state, age, rels in rows
        ]

    def columns(self, schema: str, relation: str) -> list[tuple[str, str]]:
        failure = f"could not list the columns of {qualify(schema, relation)}"
        return _read_only(self._con, lambda cur: _columns(cur, schema, relation), failure)

    def row_count(self, schema: str, relation: str) -> int:
        failure = f"could not count the rows of {qualify(schema, relation)}"
        return _read_only(self._con, lambda cur: _row_count(cur, schema, relation), failure)

    def compare_rows(
        self,
        before: tuple[str, str],
        after: tuple[str, str],
        key: Sequence[str],
        columns: Sequence[str],
        *,
        examples: int = 5,
    ) -> RowComparison:
        return _read_only(
            self._con,
            lambda cur: _compare(cur, before, after, key, columns, examples),
            f"could not compare {qualify(*before)} with {qualify(*after)}",
        )

    def query(self, sql: str, *, limit: int, timeout_ms: int = QUERY_TIMEOUT_MS) -> QueryResult:
        """Warehouse.query, cancelled after `timeout_ms` (statement_timeout, each statement)."""
        statement = one_statement(sql)
        return _read_only(
            self._con,
            lambda cur: run_query(_executor(cur), statement, limit),
            "could not run the query",
            timeout_ms=timeout_ms,
        )


def _connect(settings: _Settings) -> Any:
    try:
        con = psycopg2.connect(**settings.dsn)
    except psycopg2.Error as exc:
        user = settings.dsn.get("user", "the default user")
        raise WarehouseError(
            f"could not connect to PostgreSQL at {settings.where} as {user}: {_describe(exc)}",
            hint=f"{_CONNECT_HINT} (connect_timeout {settings.dsn['connect_timeout']} s)",
        ) from exc
    con.autocommit = False
    return con


def _names(views: Mapping[str, str]) -> list[tuple[str, str]]:
    return [("view", name) for name in views] + [("relation", rel) for rel in views.values()]


def _statement_error(failed: _StatementFailed, failure: str, hint: str | None) -> WarehouseError:
    if failed.subject == "commit" and failed.pgcode is None:
        hint = "the connection broke during COMMIT, so it may or may not have happened: read the marker"
    return WarehouseError(f"{failure}: {failed.subject}: {_describe(failed.cause)}", hint=hint)
