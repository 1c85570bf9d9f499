"""PostgresWarehouse: the Warehouse Protocol over the modules beside it.

DDL is transactional, so a switch (releasekit.warehouse.switch) runs in one transaction;
this adapter gives its statements (staging: build in a staging schema, then swap).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import (
    Capabilities,
    Connection,
    QueryResult,
    ReleaseMarker,
    RowComparison,
    Statement,
    StatementHook,
)
from releasekit.warehouse.inspection import data_version_of, data_version_sql, one_statement, run_query
from releasekit.warehouse.naming import qualify, quote
from releasekit.warehouse.postgres import catalog, inspection
from releasekit.warehouse.postgres.grants import parse_grants
from releasekit.warehouse.postgres.settings import read_settings
from releasekit.warehouse.postgres.staging import StagedSwitch, byte_length, staging_schema
from releasekit.warehouse.postgres.statements import Cursor, execute, fetch
from releasekit.warehouse.postgres.transactions import PostgresSession, Transactions, connect
from releasekit.warehouse.switch import SwitchRequest, switch_schema

T = TypeVar("T")


class PostgresWarehouse:
    """One PostgreSQL database, reached through one connection (autocommit off).

    `on_statement` is told of each statement of a switch before it runs (the two round
    trips: the views built in staging, then the swap)."""

    capabilities: Capabilities = Capabilities(transactional_ddl=True, grants=True)

    def __init__(
        self,
        connection: Connection,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_statement: StatementHook | None = None,
    ) -> None:
        self._settings = read_settings(connection)
        self._on_statement = on_statement
        self._con = connect(self._settings)
        self._transactions = Transactions(self._con, self._settings.lock_timeout_ms, sleep)
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
        kinds = self._run(
            lambda cur: catalog.relations(cur, schema), f"could not list relations in {schema!r}"
        )
        return {name for name, (kind, _) in kinds.items() if kind in catalog.DROP_KINDS}

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
        switch_schema(self, SwitchRequest(schema, views, physical_schema, marker, dropped, grants))

    def read_marker(self, schema: str) -> ReleaseMarker | None:
        return self._run(
            lambda cur: catalog.read_marker(cur, schema), f"could not read the marker of {schema!r}"
        )

    def view_targets(self, schema: str) -> dict[str, str]:
        targets = self._run(
            lambda cur: catalog.our_views(cur, schema), f"could not list the views of {schema!r}"
        )
        return {name: relation for name, (_, relation) in targets.items()}

    def drop_relations(self, schema: str, names: Iterable[str]) -> None:
        wanted = list(dict.fromkeys(names))
        if wanted:
            self._run(
                lambda cur: catalog.drop_relations(cur, schema, wanted),
                f"could not drop relations in schema {schema!r}",
                contended=(schema,),
            )

    def readers(self, schema: str, names: Iterable[str]) -> dict[str, list[str]]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        return self._run(
            lambda cur: catalog.readers(cur, schema, wanted), f"could not list readers in {schema!r}"
        )

    def drop_schema(self, schema: str) -> None:
        if byte_length(schema) <= self._max_bytes:  # a longer name cannot exist
            self._run(
                lambda cur: catalog.drop_schema(cur, schema),
                f"could not drop schema {schema!r}",
                contended=(schema,),
            )

    def columns(self, schema: str, relation: str) -> list[tuple[str, str]]:
        failure = f"could not list the columns of {qualify(schema, relation)}"
        return inspection.read_only(
            self._con, lambda cur: inspection.read_columns(cur, schema, relation), failure
        )

    def row_count(self, schema: str, relation: str) -> int:
        failure = f"could not count the rows of {qualify(schema, relation)}"
        return inspection.read_only(
            self._con, lambda cur: inspection.count_rows(cur, schema, relation), failure
        )

    def compare_rows(
        self,
        before: tuple[str, str],
        after: tuple[str, str],
        key: Sequence[str],
        columns: Sequence[str],
        *,
        examples: int = 5,
    ) -> RowComparison:
        return inspection.read_only(
            self._con,
            lambda cur: inspection.compare_rows(cur, before, after, key, columns, examples),
            f"could not compare {qualify(*before)} with {qualify(*after)}",
        )

    def profile(self, schema: str, relation: str) -> dict[str, float | None]:
        failure = f"could not measure {qualify(schema, relation)}"
        return inspection.read_only(self._con, lambda cur: inspection.profile(cur, schema, relation), failure)

    def data_version(self, relation: str, mode: str) -> str:
        sql = data_version_sql(relation, mode, "hashtextextended(t::text, 0)::numeric")
        rows = inspection.read_only(
            self._con, lambda cur: fetch(cur, relation, sql), f"could not read {relation}"
        )
        return data_version_of(mode, *rows[0])

    def copy_relation(self, schema: str, source: str, target: str) -> None:
        self._check_fits("table", target)
        sql = f"CREATE TABLE {qualify(schema, target)} AS TABLE {qualify(schema, source)}"
        self._run(
            lambda cur: execute(cur, Statement(f"table {target!r}", sql)),
            f"could not copy {schema}.{source}",
            contended=(schema,),
        )

    def query(self, sql: str, *, limit: int, timeout_ms: int = inspection.QUERY_TIMEOUT_MS) -> QueryResult:
        """Warehouse.query, cancelled after `timeout_ms` (statement_timeout, each statement)."""
        statement = one_statement(sql)
        return inspection.read_only(
            self._con,
            lambda cur: run_query(inspection.executor(cur), statement, limit),
            "could not run the query",
            timeout_ms=timeout_ms,
        )

    def close(self) -> None:
        self._con.close()

    # --- the statements of a switch (releasekit.warehouse.switch decides their order) ---

    def check_switch(self, request: SwitchRequest) -> None:
        names = [("schema", request.schema), ("schema", request.physical_schema)]
        names += [("view", name) for name in request.views]
        names += [("relation", relation) for relation in request.views.values()]
        for kind, name in names:
            self._check_fits(kind, name)
        parse_grants(request.grants)  # an unknown privilege is refused before anything runs

    def transact(
        self,
        work: Callable[[PostgresSession], None],
        failure: str,
        *,
        hint: str | None,
        contended: Sequence[str],
    ) -> None:
        """Run `work` in one transaction under the lock timeout, retried on lock conflicts."""

        def run(cur: Cursor) -> None:
            work(PostgresSession(cur, self._on_statement))

        self._run(run, failure, hint=hint, contended=contended)

    def switch_statements(self, session: PostgresSession, request: SwitchRequest) -> list[Statement]:
        plan = StagedSwitch(
            request.schema,
            staging_schema(request.schema, self._max_bytes),
            request.physical_schema,
            dict(request.views),
            request.dropped,
            request.marker,
            parse_grants(request.grants),
        )
        return plan.steps(session.cursor)

    def _run(
        self,
        work: Callable[[Cursor], T],
        failure: str,
        *,
        hint: str | None = None,
        contended: Sequence[str] = (),
    ) -> T:
        return self._transactions.run(work, failure, hint=hint, contended=contended)

    def _prepare_session(self) -> int:
        # string_literal relies on standard_conforming_strings; a database may turn it off.
        steps = [Statement("session", "SET standard_conforming_strings = on")]
        if self._settings.role:
            steps.append(Statement(f"role {self._settings.role!r}", f"SET ROLE {quote(self._settings.role)}"))

        def prepare(cur: Cursor) -> int:
            for step in steps:
                execute(cur, step)
            return int(fetch(cur, "session", "SHOW max_identifier_length")[0][0])

        try:
            return self._run(prepare, f"could not prepare the session on {self._settings.where}")
        except WarehouseError:
            self.close()
            raise

    def _check_fits(self, kind: str, name: str) -> None:
        size = byte_length(name)
        if size > self._max_bytes:
            raise WarehouseError(
                f"the {kind} name {name!r} is {size} bytes; PostgreSQL cuts names at "
                f"{self._max_bytes} bytes, so it would silently become another name",
                hint="use a shorter name; nothing changed",
            )
