"""DuckDB, the embedded default warehouse.

DDL is transactional, so a switch (releasekit.warehouse.switch) replaces every view and
the marker in one transaction: readers on other connections see the old release or the new
one, never a mix. This adapter gives the statements: it replaces views in place (CREATE OR
REPLACE VIEW), since DuckDB cannot rename schemas ("Altering schemas is not yet supported").
It gives the view-by-view statements too (a test runs that path on DuckDB).

DuckDB allows one process per database file: a second process cannot open it at all,
not even read-only. Opening fails fast and names the process that holds the file.

Inspection (`columns`, `row_count`, `compare_rows`, `query`) runs in a READ ONLY
transaction that is always rolled back, so nothing it runs can write. `query` also asks
DuckDB's parser that the text is exactly one SELECT before running it. DuckDB has no
statement timeout: a query runs in this process, where Ctrl-C interrupts it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import duckdb

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import (
    MARKER_VIEW,
    Capabilities,
    Connection,
    QueryResult,
    ReleaseMarker,
    RowComparison,
    Statement,
    StatementHook,
)
from releasekit.warehouse.inspection import (
    Execute,
    Side,
    compare_relations,
    data_version_of,
    data_version_sql,
    missing_relation,
    one_statement,
    run_query,
)
from releasekit.warehouse.naming import qualify, quote, string_literal
from releasekit.warehouse.profile import profile_of, profile_query
from releasekit.warehouse.switch import SwitchRequest, in_place, switch_schema

T = TypeVar("T")

_LOCK_FAILURE = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
_BUSY_HINT = "wait for it to finish or stop it; DuckDB allows one writing process per file"
_DAMAGE = ("Corrupt database file", "Corrupt WAL file")
_DAMAGE_HINT = (
    "DuckDB cannot recover a file whose checkpoint was cut short by a process killed "
    "(kill -9, out of memory) or a machine that lost power while writing it; restore the "
    "file from a copy, or move it aside and deploy each environment again to rebuild it"
)

_RELATION_KINDS_SQL = """
SELECT table_name, 'TABLE' FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = ? AND NOT internal
UNION ALL
SELECT view_name, 'VIEW' FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = ? AND NOT internal
"""
_COLUMNS_SQL = """
SELECT column_name, data_type FROM duckdb_columns()
WHERE database_name = current_database() AND schema_name = ? AND table_name = ? AND NOT internal
ORDER BY column_index
"""
_VIEWS_SQL = """
SELECT view_name, sql FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = ? AND NOT internal
"""

# DuckDB stores a view's SQL re-rendered: keywords upper case, identifiers quoted only
# when they need it. Accept both spellings so older versions' verbatim text parses too.
_IDENT = r'(?:"(?:[^"]|"")*"|[^\W\d][\w$]*)'
_RELEASEKIT_VIEW = re.compile(
    rf"\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:{_IDENT}\.){{0,2}}{_IDENT}\s+AS\s+"
    rf"SELECT\s+\*\s+FROM\s+(?:{_IDENT}\.)?(?P<schema>{_IDENT})\.(?P<relation>{_IDENT})\s*;?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DuckDBSession:
    """The transaction a switch's statements run in; a failing one names `failure`."""

    warehouse: DuckDBWarehouse
    failure: str
    hint: str | None

    def execute(self, statement: Statement) -> None:
        self.warehouse.execute(statement, self.failure, self.hint)


class DuckDBWarehouse:
    """A DuckDB database file, reached through one connection."""

    capabilities: Capabilities = Capabilities(transactional_ddl=True, single_process=True)

    def __init__(self, connection: Connection, *, on_statement: StatementHook | None = None) -> None:
        self.path = _database_path(connection)
        self._on_statement = on_statement
        self._con = open_database(self.path, _config_options(connection))

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def relations(self, schema: str) -> set[str]:
        return set(self._relation_kinds(schema))

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
        if MARKER_VIEW not in self._views(schema):
            return None
        rows = self._query(
            f"SELECT release_id, env, git_sha, switched_at FROM {qualify(schema, MARKER_VIEW)}",
            doing=f"read the release marker of schema {schema!r}",
        )
        return _marker_from_rows(schema, rows)

    def view_targets(self, schema: str) -> dict[str, str]:
        return {name: relation for name, (_, relation) in self.view_sources(schema).items()}

    def drop_relations(self, schema: str, names: Iterable[str]) -> None:
        kinds = self._relation_kinds(schema)
        wanted = [name for name in dict.fromkeys(names) if name in kinds]
        steps = [_drop(schema, name, kinds[name]) for name in wanted]
        if steps:
            self._run(steps, f"could not drop relations in schema {schema!r}")

    def readers(self, schema: str, names: Iterable[str]) -> dict[str, list[str]]:
        return {}  # DuckDB binds a view to names when it is queried: nothing to ask

    def drop_schema(self, schema: str) -> None:
        step = Statement(f"schema {schema!r}", f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE")
        self._run([step], f"could not drop schema {schema!r}")

    def columns(self, schema: str, relation: str) -> list[tuple[str, str]]:
        doing = f"list the columns of {qualify(schema, relation)}"
        rows = self._query(_COLUMNS_SQL, [schema, relation], doing=doing)
        return [(str(name), str(data_type)) for name, data_type in rows]

    def row_count(self, schema: str, relation: str) -> int:
        def count(execute: Execute) -> int:
            if not self.columns(schema, relation):
                raise missing_relation(schema, relation)
            return int(execute(f"SELECT count(*) FROM {qualify(schema, relation)}")[1][0][0])

        return self._read_only(count, doing=f"count the rows of {qualify(schema, relation)}")

    def compare_rows(
        self,
        before: tuple[str, str],
        after: tuple[str, str],
        key: Sequence[str],
        columns: Sequence[str],
        *,
        examples: int = 5,
    ) -> RowComparison:
        def compare(execute: Execute) -> RowComparison:
            old, new = (Side(name, dict(self.columns(*name))) for name in (before, after))
            return compare_relations(execute, old, new, key, columns, examples=examples)

        return self._read_only(compare, doing=f"compare {qualify(*before)} with {qualify(*after)}")

    def profile(self, schema: str, relation: str) -> dict[str, float | None]:
        def measure(execute: Execute) -> dict[str, float | None]:
            columns = self.columns(schema, relation)
            if not columns:
                raise missing_relation(schema, relation)
            sql, names = profile_query(schema, relation, columns)
            return profile_of(names, execute(sql)[1][0])

        return self._read_only(measure, doing=f"measure {qualify(schema, relation)}")

    def data_version(self, relation: str, mode: str) -> str:
        sql = data_version_sql(relation, mode, "hash(t)")
        rows, total = self._read_only(lambda execute: execute(sql)[1][0], doing=f"read {relation}")
        return data_version_of(mode, rows, total)

    def copy_relation(self, schema: str, source: str, target: str) -> None:
        sql = f"CREATE TABLE {qualify(schema, target)} AS SELECT * FROM {qualify(schema, source)}"
        self._run([Statement(f"table {target!r}", sql)], f"could not copy {schema}.{source}")

    def query(self, sql: str, *, limit: int) -> QueryResult:
        statement = one_statement(sql)
        self._require_select(statement)
        return self._read_only(lambda execute: run_query(execute, statement, limit), doing="run the query")

    def close(self) -> None:
        self._con.close()

    # --- the statements of a switch (releasekit.warehouse.switch decides their order) ---

    def check_switch(self, request: SwitchRequest) -> None:
        if any(request.grants.values()):
            raise WarehouseError("DuckDB has no GRANT: a DuckDB environment cannot declare grants")

    def transact(
        self,
        work: Callable[[DuckDBSession], None],
        failure: str,
        *,
        hint: str | None,
        contended: Sequence[str] = (),
    ) -> None:
        """Run `work` in one transaction, rolled back when it raises. DuckDB fails a
        conflicting writer at once, so nothing here waits for `contended`."""
        session = DuckDBSession(self, failure, hint)
        session.execute(Statement("transaction", "BEGIN TRANSACTION"))
        try:
            work(session)
            session.execute(Statement("commit", "COMMIT"))
        except BaseException:
            self._rollback()
            raise

    def switch_statements(self, session: DuckDBSession, request: SwitchRequest) -> list[Statement]:
        return in_place(self, request)

    def view_sources(self, schema: str) -> dict[str, tuple[str, str]]:
        sources: dict[str, tuple[str, str]] = {}
        for name, sql in self._views(schema).items():
            source = _view_source(sql)
            if name != MARKER_VIEW and source is not None:
                sources[name] = source
        return sources

    def view_definitions(self, schema: str) -> dict[str, Statement]:
        return {
            name: Statement(f"view {name!r} as it was", f"DROP VIEW IF EXISTS {qualify(schema, name)}; {sql}")
            for name, sql in self._views(schema).items()
        }

    def create_schema(self, schema: str) -> Statement:
        return Statement(f"schema {schema!r}", f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")

    def replace_view(self, schema: str, name: str, physical_schema: str, relation: str) -> Statement:
        sql = (
            f"CREATE OR REPLACE VIEW {qualify(schema, name)} AS "
            f"SELECT * FROM {qualify(physical_schema, relation)}"
        )
        return Statement(f"view {name!r} -> {physical_schema}.{relation}", sql)

    def drop_view(self, schema: str, name: str) -> Statement:
        return _drop(schema, name, "VIEW")

    def write_marker(self, schema: str, marker: ReleaseMarker) -> Statement:
        sql = (
            f"CREATE OR REPLACE VIEW {qualify(schema, MARKER_VIEW)} AS SELECT "
            f"CAST({int(marker.release_id)} AS BIGINT) AS release_id, "
            f"{string_literal(marker.env)} AS env, "
            f"{string_literal(marker.git_sha)} AS git_sha, "
            f"{string_literal(marker.switched_at)} AS switched_at"
        )
        return Statement(f"marker view {MARKER_VIEW!r}", sql)

    def execute(self, statement: Statement, failure: str, hint: str | None) -> None:
        """Run one statement that changes the warehouse (told to `on_statement` first)."""
        if self._on_statement is not None:
            self._on_statement(statement)
        try:
            self._con.execute(statement.sql)
        except duckdb.Error as exc:
            message = f"{failure}: {statement.subject}: {_first_line(exc)}"
            raise WarehouseError(message, hint=hint) from exc

    def _run(self, statements: list[Statement], failure: str) -> None:
        def work(session: DuckDBSession) -> None:
            for statement in statements:
                session.execute(statement)

        self.transact(work, failure, hint=None)

    def _relation_kinds(self, schema: str) -> dict[str, str]:
        rows = self._query(
            _RELATION_KINDS_SQL, [schema, schema], doing=f"list relations in schema {schema!r}"
        )
        return {str(name): str(kind) for name, kind in rows}

    def _views(self, schema: str) -> dict[str, str]:
        rows = self._query(_VIEWS_SQL, [schema], doing=f"list views in schema {schema!r}")
        return {str(name): str(sql) for name, sql in rows}

    def _query(self, sql: str, params: list[Any] | None = None, *, doing: str) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise WarehouseError(f"could not {doing} in {self.path}: {_first_line(exc)}") from exc

    def _rollback(self) -> None:
        # A failed COMMIT has already ended the transaction; the first error is the story.
        with contextlib.suppress(duckdb.Error):
            self._con.execute("ROLLBACK")

    def _read_only(self, work: Callable[[Execute], T], *, doing: str) -> T:
        """Run `work` in a READ ONLY transaction, rolled back whatever happens."""
        self._query("BEGIN TRANSACTION READ ONLY", doing=doing)
        try:
            return work(lambda sql: self._fetch(sql, doing=doing))
        finally:
            self._rollback()

    def _fetch(self, sql: str, *, doing: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            result = self._con.execute(sql)
            return [column[0] for column in result.description], result.fetchall()
        except duckdb.Error as exc:
            raise WarehouseError(f"could not {doing} in {self.path}: {_first_line(exc)}") from exc

    def _require_select(self, statement: str) -> None:
        try:
            kinds = [parsed.type for parsed in self._con.extract_statements(statement)]
        except duckdb.Error as exc:
            raise WarehouseError(f"could not run the query in {self.path}: {_first_line(exc)}") from exc
        if kinds != [duckdb.StatementType.SELECT]:
            words = " + ".join(kind.name for kind in kinds)
            raise WarehouseError(
                f"the query must be one SELECT statement, not {words}",
                hint="a query only reads: write it as a SELECT (WITH ... SELECT is fine)",
            )


def _database_path(connection: Connection) -> str:
    path = connection.settings.get("path")
    if not isinstance(path, str) or not path:
        raise WarehouseError(
            f"the DuckDB connection for database {connection.database!r} names no file",
            hint="set `path` in the dbt profile's target",
        )
    if path != ":memory:" and not os.path.isabs(path):
        # A relative path would depend on the working directory: resolve it where the
        # profile is read, against the dbt project directory.
        raise WarehouseError(
            f"the DuckDB path {path!r} is relative; releasekit needs it absolute",
            hint="resolve it against the dbt project directory before connecting",
        )
    return path


def _config_options(connection: Connection) -> dict[str, Any]:
    # DuckDB shares one database between the connections of a process only when their
    # config matches; dbt-duckdb opens with the profile's `config_options`, so do we.
    options = connection.settings.get("config_options") or {}
    if not isinstance(options, Mapping):
        raise WarehouseError(f"the DuckDB config_options must be a mapping, got {options!r}")
    return dict(options)


def open_database(path: str, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file `path`; a file another process holds is a
    WarehouseBusyError naming that process."""
    try:
        return duckdb.connect(path, config=config)
    except duckdb.Error as exc:
        if _LOCK_FAILURE in str(exc):
            raise _busy_error(path, str(exc)) from exc
        reason = _first_line(exc)
        if any(damage in reason for damage in _DAMAGE):
            damaged = f"the DuckDB database {path} is damaged: {reason}"
            raise WarehouseError(damaged, hint=_DAMAGE_HINT) from exc
        raise WarehouseError(f"could not open DuckDB database {path}: {reason}") from exc


def _busy_error(path: str, message: str) -> WarehouseBusyError:
    holder = _LOCK_HOLDER.search(message)
    if holder is None:
        who = "another process"
    else:
        pid = int(holder["pid"])
        who = f"process {pid} ({_command_line(pid) or holder['exe']})"
    return WarehouseBusyError(f"DuckDB database {path} is held by {who}", hint=_BUSY_HINT)


def _command_line(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None  # not Linux, the process is gone, or we may not look
    args = [arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg]
    if not args:
        return None
    # One line, and short: a `python -c` script would otherwise spill over the message.
    line = " ".join(shlex.join(args).split())
    return line if len(line) <= 160 else line[:157] + "..."


def _drop(schema: str, name: str, kind: str) -> Statement:
    return Statement(f"{kind.lower()} {name!r}", f"DROP {kind} IF EXISTS {qualify(schema, name)}")


def _marker_from_rows(schema: str, rows: list[tuple[Any, ...]]) -> ReleaseMarker:
    if len(rows) != 1:
        raise WarehouseError(
            f"the release marker {schema}.{MARKER_VIEW} holds {len(rows)} rows, not 1",
            hint="switch the environment again (deploy or rollback) to rewrite it",
        )
    release_id, env, git_sha, switched_at = rows[0]
    return ReleaseMarker(
        env=str(env), release_id=int(release_id), git_sha=str(git_sha), switched_at=str(switched_at)
    )


def _view_target(sql: str) -> str | None:
    source = _view_source(sql)
    return None if source is None else source[1]


def _view_source(sql: str) -> tuple[str, str] | None:
    match = _RELEASEKIT_VIEW.fullmatch(sql)
    return None if match is None else (_unquote(match["schema"]), _unquote(match["relation"]))


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def _first_line(exc: BaseException) -> str:
    # DuckDB appends "Did you mean ...?" and a caret drawing; the first line is the cause.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
