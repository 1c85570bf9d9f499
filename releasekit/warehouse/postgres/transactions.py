"""The connection, and the transactions PostgresWarehouse's work runs in (retried on lock
conflicts).

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
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg2

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import Statement, StatementHook
from releasekit.warehouse.postgres.settings import Settings
from releasekit.warehouse.postgres.statements import (
    Cursor,
    StatementFailed,
    commit,
    describe,
    execute,
    fetch,
    rollback,
)

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


@dataclass(frozen=True)
class PostgresSession:
    """A transaction a switch's statements run in; each is told to `on_statement` first."""

    cursor: Cursor
    on_statement: StatementHook | None = None

    def execute(self, statement: Statement) -> None:
        if self.on_statement is not None:
            self.on_statement(statement)
        execute(self.cursor, statement)


def connect(settings: Settings) -> Any:
    try:
        con = psycopg2.connect(**settings.dsn)
    except psycopg2.Error as exc:
        user = settings.dsn.get("user", "the default user")
        raise WarehouseError(
            f"could not connect to PostgreSQL at {settings.where} as {user}: {describe(exc)}",
            hint=f"{_CONNECT_HINT} (connect_timeout {settings.dsn['connect_timeout']} s)",
        ) from exc
    con.autocommit = False
    return con


class Transactions:
    """Runs work in one transaction under the lock timeout, retrying lock conflicts."""

    def __init__(self, con: Any, lock_timeout_ms: int, sleep: Callable[[float], None]) -> None:
        self.con = con
        self.lock_timeout_ms = lock_timeout_ms
        self._sleep = sleep

    def run(
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
                return self.attempt(work)
            except StatementFailed as failed:
                if failed.pgcode not in _LOCK_CONFLICTS:
                    raise _statement_error(failed, failure, hint) from failed.cause
                if attempt == ATTEMPTS:
                    raise self._busy_error(failure, contended) from failed.cause
            self._sleep(_BACKOFF_S * 2 ** (attempt - 1) * (1 + random.random()))
        raise AssertionError("unreachable")

    def attempt(self, work: Callable[[Cursor], T]) -> T:
        try:
            cur = self.con.cursor()
        except psycopg2.Error as exc:  # closed, or the connection broke
            raise StatementFailed("connection", exc) from exc
        try:
            execute(cur, Statement("lock timeout", f"SET LOCAL lock_timeout = {self.lock_timeout_ms}"))
            result = work(cur)
            commit(self.con)
            return result
        except BaseException:
            rollback(self.con)
            raise
        finally:
            with contextlib.suppress(psycopg2.Error):
                cur.close()

    def _busy_error(self, failure: str, contended: Sequence[str]) -> WarehouseBusyError:
        timeout = self.lock_timeout_ms
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
            rows = self.attempt(lambda cur: fetch(cur, "locks", _LOCK_HOLDERS_SQL, (list(schemas),)))
        except StatementFailed:
            return []  # the message is still true without the names
        return [
            f"pid {pid} (user {user}, application {app!r}, {state}, transaction open {age} s) on {rels}"
            for pid, user, app, state, age, rels in rows
        ]


def _statement_error(failed: StatementFailed, failure: str, hint: str | None) -> WarehouseError:
    if failed.subject == "commit" and failed.pgcode is None:
        hint = "the connection broke during COMMIT, so it may or may not have happened: read the marker"
    return WarehouseError(f"{failure}: {failed.subject}: {describe(failed.cause)}", hint=hint)
