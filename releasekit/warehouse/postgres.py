"""PostgreSQL, through psycopg2 (which dbt-postgres installs).

Switching an environment. A switch builds the views that change, and the new marker, in a
staging schema beside the live one (`<schema>__rk_next`; a schema too long for that gets a
cut name with a hash, so every name fits PostgreSQL's 63 bytes by construction), then swaps
them in view by view, all in ONE transaction:

    CREATE SCHEMA staging; CREATE VIEW staging.v AS SELECT * FROM physical.rel; ...
    DROP VIEW live.v, ...                      -- the views replaced or dropped, and the marker
    ALTER VIEW staging.v SET SCHEMA live; ...  -- every new view, and the new marker
    DROP SCHEMA staging

A view of ours that already reads the relation the release wants is left alone: it is not
locked, and keeps its grants and whatever reads it. Readers see the old release until
COMMIT and the new one after, never a mix, not even across the statements of one open
transaction: while a reader holds an old view the switch cannot drop it, so cannot commit.

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

Why views are swapped one by one and not by renaming the staging schema over the live one
(and dropping the old one in the same transaction): that drop locks every old view exactly
as DROP VIEW does, so renaming blocks readers no less, and it locks unchanged views too.
Swapping views keeps the live schema the same object: its owner, grants (the consumers'
USAGE), default privileges and comment survive, and objects releasekit did not make (a
notes table, a user's own view) stay where they are instead of being moved across. DROP
VIEW without CASCADE fails rather than silently dropping a dependant created after the
check below. The staging schema exists only inside the switch transaction: a killed switch
leaves nothing behind (the server rolls back). A committed schema under the staging name
that carries releasekit's staging comment is a leftover and is dropped first; one without
the comment is someone else's, and the switch refuses rather than drop it.

Dependants. Views bind to objects, not names: a view of someone else's (in any schema) on
`prod.orders` would keep reading the old release, and the switch could not drop the old
view anyway. So a switch refuses, before changing anything, with a WarehouseError that
lists every object reading a view it would replace or drop: drop them, switch, then
recreate them on the new release. `drop_schema` refuses likewise when objects outside the
schema read it, which CASCADE would otherwise drop silently.

Grants. A replaced view is a new object: the grants made on the old one (by anyone, to
anyone but its owner) are given to the new one while it is built in the staging schema, and
the environment's declared grants are given to every new view and the marker there too. A
view the switch keeps gets a declared grant only when a role lacks it (asked with
has_table_privilege, so a steady state touches nothing), and the roles get USAGE on the
schema. All of it commits or rolls back with the switch: a role that does not exist fails
the switch, and nothing changes.

Views releasekit made carry a comment naming their relation; a view counts as ours (for
`view_targets` and for leaving it alone) when that comment names the one relation
`pg_depend` says it reads: no SQL is parsed.

Connection.settings (dbt-postgres `credentials.to_dict()` gives these): host, port, user,
password (or pass), dbname (or Connection.database), connect_timeout, role, sslmode,
sslcert, sslkey, sslrootcert, keepalives_idle; releasekit's own: lock_timeout_ms.

Inspection (`columns`, `row_count`, `compare_rows`, `query`) runs in a REPEATABLE READ,
READ ONLY transaction that is always rolled back: PostgreSQL refuses every write in it, and
the rollback undoes even session settings a query changes (`set_config`). `query` also has
a statement timeout (QUERY_TIMEOUT_MS, 5 minutes), runs one statement only, wrapped as a
subquery (so INSERT or CREATE is a syntax error). Reads set no lock timeout: a switch holds
its locks for milliseconds.
"""

from __future__ import annotations

import contextlib
import graphlib
import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import psycopg2

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import (
    MARKER_VIEW,
    Capabilities,
    Connection,
    Execute,
    QueryResult,
    ReleaseMarker,
    RowComparison,
    Side,
    check_switch_names,
    compare_relations,
    missing_relation,
    one_statement,
    run_query,
)
from releasekit.warehouse.naming import qualify, quote, string_literal

T = TypeVar("T")
Cursor = Any  # psycopg2 ships no type information

# Under the server's deadlock_timeout (1 s by default): when a reader and a switch wait
# for each other, the switch's timeout fires first and the reader carries on.
DEFAULT_LOCK_TIMEOUT_MS = 500
ATTEMPTS = 5
_BACKOFF_S = 0.05
_PRIVILEGES = frozenset({"select", "insert", "update", "delete", "truncate", "references", "trigger"})
_LOCK_CONFLICTS = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected
_PASSED_THROUGH = ("sslmode", "sslcert", "sslkey", "sslrootcert", "keepalives_idle")
_DROP_KINDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
_KIND_WORDS = {
    **{kind: word.lower() for kind, word in _DROP_KINDS.items()},
    "p": "partitioned table",
    "S": "sequence",
    "i": "index",
    "I": "partitioned index",
    "c": "composite type",
}
_VIEW_COMMENT = "releasekit: SELECT * FROM "
_STAGING_COMMENT = "releasekit staging schema for "
_SWITCH_HINT = (
    "nothing changed: the schema still serves its previous release; "
    "fix the cause above and run the switch again"
)
_CONNECT_HINT = (
    "check that the server runs and is reachable, and the host, port, user, password and "
    "dbname of the dbt profile's target"
)

_SCHEMA_COMMENTS_SQL = """
SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = ANY(%s)
"""
_RELATIONS_SQL = """
SELECT c.relname, c.relkind, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND (%s OR c.relname = ANY(%s))
"""
# Who reads the given relations: views and materialized views (through their rewrite
# rule), and anything else that depends on the relation or its row type.
_DEPENDANTS_SQL = """
SELECT DISTINCT o.type, coalesce(o.schema, ''), o.identity, src.relname
FROM pg_class src
JOIN pg_depend d ON d.deptype = 'n' AND (
     (d.refclassid = 'pg_class'::regclass AND d.refobjid = src.oid)
  OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = src.reltype))
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
CROSS JOIN LATERAL pg_identify_object(
    CASE WHEN r.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END,
    coalesce(r.ev_class, d.objid),
    CASE WHEN r.oid IS NULL THEN d.objsubid ELSE 0 END) AS o
WHERE src.oid = ANY(%(oids)s::oid[]) AND NOT coalesce(r.ev_class, 0) = ANY(%(oids)s::oid[])
ORDER BY 3, 4
"""
_VIEW_GRANTS_SQL = """
SELECT c.relname, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
WHERE n.nspname = %s AND c.relname = ANY(%s) AND a.grantee <> c.relowner
ORDER BY 1, 2, 3
"""
_LACKING_SQL = """
SELECT v.name, g.role, g.privilege
FROM unnest(%(names)s::text[]) AS v(name)
CROSS JOIN unnest(%(roles)s::text[], %(privileges)s::text[]) AS g(role, privilege)
WHERE NOT has_table_privilege(g.role, format('%%I.%%I', %(schema)s::text, v.name), g.privilege)
"""
_VIEW_READS_SQL = """
SELECT DISTINCT v.relname, obj_description(v.oid, 'pg_class'), tn.nspname, t.relname
FROM pg_class v
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_rewrite r ON r.ev_class = v.oid
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE vn.nspname = %s AND v.relkind = 'v'
"""
# (reader, read) pairs among the given relations: a view or materialized view reads
# through its rewrite rule.
_READS_AMONG_SQL = """
SELECT DISTINCT r.ev_class, d.refobjid
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
WHERE r.ev_class = ANY(%(oids)s::oid[]) AND d.refobjid = ANY(%(oids)s::oid[])
"""
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


@dataclass(frozen=True)
class _Step:
    subject: str  # what the statement touches, for the error message
    sql: str


class _StatementFailed(Exception):
    def __init__(self, subject: str, cause: Exception) -> None:
        super().__init__(subject)
        self.subject = subject
        self.cause = cause
        self.pgcode: str | None = getattr(cause, "pgcode", None)


@dataclass(frozen=True)
class _Settings:
    dsn: dict[str, Any]  # keyword arguments of psycopg2.connect
    role: str | None
    lock_timeout_ms: int

    @property
    def where(self) -> str:
        return f"{self.dsn['host']}:{self.dsn['port']}/{self.dsn['dbname']}"


@dataclass(frozen=True)
class _Dependant:
    kind: str
    schema: str
    identity: str
    reads: str  # the view of ours it reads

    def __str__(self) -> str:
        return f"{self.kind} {self.identity} (reads {self.reads})"


class PostgresWarehouse:
    """One PostgreSQL database, reached through one connection (autocommit off)."""

    capabilities: Capabilities = Capabilities(transactional_ddl=True, schema_rename=True, grants=True)

    def __init__(self, connection: Connection, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._settings = _read_settings(connection)
        self._sleep = sleep
        self._con = _connect(self._settings)
        self._max_bytes = self._prepare_session()

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
        self._run(plan.apply, plan.failure, hint=_SWITCH_HINT, contended=(schema, physical_schema))

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
            self._rollback()
            raise
        finally:
            with contextlib.suppress(psycopg2.Error):
                cur.close()

    def _rollback(self) -> None:
        # After a failed statement or COMMIT the first error is the story.
        with contextlib.suppress(psycopg2.Error):
            self._con.rollback()

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
        return self._read_only(lambda cur: _columns(cur, schema, relation), failure)

    def row_count(self, schema: str, relation: str) -> int:
        failure = f"could not count the rows of {qualify(schema, relation)}"
        return self._read_only(lambda cur: _row_count(cur, schema, relation), failure)

    def compare_rows(
        self,
        before: tuple[str, str],
        after: tuple[str, str],
        key: Sequence[str],
        columns: Sequence[str],
        *,
        examples: int = 5,
    ) -> RowComparison:
        def compare(cur: Cursor) -> RowComparison:
            old, new = (Side(name, dict(_columns(cur, *name))) for name in (before, after))
            execute = _executor(cur)
            return compare_relations(
                execute, old, new, key, columns, examples=examples, as_text=_without_equality
            )

        return self._read_only(compare, f"could not compare {qualify(*before)} with {qualify(*after)}")

    def query(self, sql: str, *, limit: int, timeout_ms: int = QUERY_TIMEOUT_MS) -> QueryResult:
        """Warehouse.query, cancelled after `timeout_ms` (statement_timeout, each statement)."""
        statement = one_statement(sql)
        return self._read_only(
            lambda cur: run_query(_executor(cur), statement, limit),
            "could not run the query",
            timeout_ms=timeout_ms,
        )

    def _read_only(self, work: Callable[[Cursor], T], failure: str, *, timeout_ms: int | None = None) -> T:
        """Run `work` in a read-only transaction, rolled back whatever happens."""
        try:
            cur = self._con.cursor()
        except psycopg2.Error as exc:  # closed, or the connection broke
            raise _read_error(_StatementFailed("connection", exc), failure, timeout_ms) from exc
        try:
            _execute(cur, _Step("read-only transaction", _READ_ONLY_SQL))
            if timeout_ms is not None:
                _execute(cur, _Step("statement timeout", f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
            return work(cur)
        except _StatementFailed as failed:
            raise _read_error(failed, failure, timeout_ms) from failed.cause
        finally:
            self._rollback()
            with contextlib.suppress(psycopg2.Error):
                cur.close()


@dataclass(frozen=True)
class _Switch:
    schema: str
    staging: str
    physical_schema: str
    views: dict[str, str]
    dropped: tuple[str, ...]
    marker: ReleaseMarker
    grants: tuple[_Grant, ...] = ()  # the environment's: on every view after the switch

    @property
    def failure(self) -> str:
        return f"could not switch schema {self.schema!r} to release {self.marker.release_id}"

    def apply(self, cur: Cursor) -> None:
        # Every check reads only the catalog, before anything changes or locks a view.
        schemas = dict(_fetch(cur, "schemas", _SCHEMA_COMMENTS_SQL, ([self.schema, self.staging],)))
        build = [self._clear_leftover(schemas[self.staging])] if self.staging in schemas else []
        self._require_physical(cur)
        if self.schema in schemas:
            changed = self._changed(cur)
            replaced = self._replaced(cur, changed)
            carried = _view_grants(cur, self.schema, [name for name, _ in replaced if name in changed])
            swap = self._swap_steps(changed, replaced) + self._grant_steps(cur, changed)
        else:
            changed, carried, swap = self.views, [], self._first_steps() + self._grant_steps(cur, self.views)
        build += self._build_steps(changed)
        build += [
            grant.on_view(self.staging, name)
            for name in [*changed, MARKER_VIEW]
            for grant in (*carried, *self.grants)
            if grant.view in (None, name)
        ]
        _execute(cur, _batch(f"views of release {self.marker.release_id} in staging", build))
        _execute(cur, _batch("swap", swap))

    def _grant_steps(self, cur: Cursor, changed: Mapping[str, str]) -> list[_Step]:
        """The environment's grants on the views this switch leaves as they are, where a
        role lacks them (so an unchanged view is not touched), and USAGE on the schema."""
        if not self.grants:
            return []
        kept = [name for name in self.views if name not in changed]
        steps = [
            grant.on_view(self.schema, name) for grant, name in _missing(cur, self.schema, kept, self.grants)
        ]
        roles = sorted({grant.role for grant in self.grants})
        steps.append(
            _Step(
                "schema usage",
                f"GRANT USAGE ON SCHEMA {quote(self.schema)} TO {', '.join(map(_grantee, roles))}",
            )
        )
        return steps

    def _changed(self, cur: Cursor) -> dict[str, str]:
        """The views to swap: a view of ours that already reads its relation stays as it is,
        so it is neither locked nor does it lose its grants or dependants."""
        live = _our_views(cur, self.schema)
        return {
            name: relation
            for name, relation in self.views.items()
            if live.get(name) != (self.physical_schema, relation)
        }

    def _clear_leftover(self, comment: str | None) -> _Step:
        if comment != _STAGING_COMMENT + self.schema:
            raise WarehouseError(
                f"{self.failure}: schema {self.staging!r} exists and is not releasekit's staging "
                f"schema for {self.schema!r}",
                hint="releasekit builds the next release there: rename or drop that schema",
            )
        return _Step(f"leftover {self.staging!r}", f"DROP SCHEMA {quote(self.staging)} CASCADE")

    def _require_physical(self, cur: Cursor) -> None:
        wanted = sorted(set(self.views.values()))
        found = _relations(cur, self.physical_schema, wanted)
        missing = [
            f"view {v!r} -> {r!r}" for v, r in self.views.items() if found.get(r, ("",))[0] not in _DROP_KINDS
        ]
        if missing:
            raise WarehouseError(
                f"{self.failure}: schema {self.physical_schema!r} has no relation for {', '.join(missing)}",
                hint=_SWITCH_HINT,
            )

    def _replaced(self, cur: Cursor, changed: Mapping[str, str]) -> list[tuple[str, int]]:
        """The live views this switch replaces or drops, as (name, oid)."""
        names = [MARKER_VIEW, *changed, *self.dropped]
        found = _relations(cur, self.schema, names)
        for name, (kind, _) in found.items():
            if kind != "v":
                raise self._not_a_view(name, kind)
        replaced = [(name, found[name][1]) for name in names if name in found]
        _refuse_dependants(cur, self.failure, [oid for _, oid in replaced])
        return replaced

    def _not_a_view(self, name: str, kind: str) -> WarehouseError:
        word = _KIND_WORDS.get(kind, "relation")
        if name in self.dropped:
            why = "the switch was asked to drop it, and drops only views"
        else:
            why = f"release {self.marker.release_id} puts a view under that name"
        return WarehouseError(
            f"{self.failure}: schema {self.schema!r} holds a {word} named {name!r}; {why}",
            hint=f"rename or drop the {word}; nothing changed",
        )

    def _build_steps(self, changed: Mapping[str, str]) -> list[_Step]:
        staging = quote(self.staging)
        comment = string_literal(_STAGING_COMMENT + self.schema)
        steps = [_Step("staging", f"CREATE SCHEMA {staging}; COMMENT ON SCHEMA {staging} IS {comment}")]
        for name, relation in changed.items():
            view, source = qualify(self.staging, name), qualify(self.physical_schema, relation)
            note = string_literal(_VIEW_COMMENT + source)
            sql = f"CREATE VIEW {view} AS SELECT * FROM {source}; COMMENT ON VIEW {view} IS {note}"
            steps.append(_Step(f"view {name!r}", sql))
        steps.append(_Step("marker", _marker_sql(qualify(self.staging, MARKER_VIEW), self.marker)))
        return steps

    def _first_steps(self) -> list[_Step]:
        live = quote(self.schema)
        sql = f"ALTER SCHEMA {quote(self.staging)} RENAME TO {live}; COMMENT ON SCHEMA {live} IS NULL"
        return [_Step(f"schema {self.schema!r}", sql)]

    def _swap_steps(self, changed: Mapping[str, str], replaced: list[tuple[str, int]]) -> list[_Step]:
        steps = []
        if replaced:
            old = ", ".join(qualify(self.schema, name) for name, _ in replaced)
            steps.append(_Step("old views", f"DROP VIEW {old}"))
        for name in [*changed, MARKER_VIEW]:
            sql = f"ALTER VIEW {qualify(self.staging, name)} SET SCHEMA {quote(self.schema)}"
            steps.append(_Step(f"view {name!r}", sql))
        steps.append(_Step("staging", f"DROP SCHEMA {quote(self.staging)}"))
        return steps


def staging_schema(schema: str, max_bytes: int = 63) -> str:
    """Where a switch builds `schema`'s next release: `<schema>__rk_next`, or for a long
    schema its cut prefix, `__rk_next_` and a hash of the whole name (never cut)."""
    plain = f"{schema}__rk_next"
    if _byte_length(plain) <= max_bytes:
        return plain
    suffix = f"__rk_next_{hashlib.sha256(schema.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    room = max_bytes - len(suffix)
    # Cut on a character boundary: a half character would be an encoding error.
    prefix = schema.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return prefix + suffix


def _read_settings(connection: Connection) -> _Settings:
    raw = connection.settings
    dbname = connection.database or raw.get("dbname") or raw.get("database")
    if not dbname:
        raise WarehouseError(
            "the PostgreSQL connection names no database", hint="set `dbname` in the dbt profile's target"
        )
    dsn: dict[str, Any] = {
        "host": str(raw.get("host") or "localhost"),
        "port": _int_setting(raw, "port", 5432, minimum=1),
        "dbname": str(dbname),
        "connect_timeout": _int_setting(raw, "connect_timeout", 10, minimum=0),
        "application_name": "releasekit",
    }
    password = raw.get("password", raw.get("pass"))
    optional = {"user": raw.get("user"), "password": password}
    optional.update({key: raw.get(key) for key in _PASSED_THROUGH})
    dsn.update({key: value for key, value in optional.items() if value not in (None, "", 0)})
    lock_timeout = _int_setting(raw, "lock_timeout_ms", DEFAULT_LOCK_TIMEOUT_MS, minimum=1)
    return _Settings(dsn=dsn, role=raw.get("role") or None, lock_timeout_ms=lock_timeout)


def _int_setting(raw: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = raw.get(key)
    if value is None:
        return default
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if number < minimum:
        raise WarehouseError(
            f"the PostgreSQL connection setting {key!r} must be a whole number >= {minimum}, got {value!r}"
        )
    return number


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


def _relations(cur: Cursor, schema: str, names: Sequence[str] | None = None) -> dict[str, tuple[str, int]]:
    """name -> (relkind, oid) for `names` in `schema` (every relation when names is None)."""
    rows = _fetch(cur, f"schema {schema!r}", _RELATIONS_SQL, (schema, names is None, list(names or [])))
    return {str(name): (str(kind), int(oid)) for name, kind, oid in rows}


def _refuse_dependants(cur: Cursor, failure: str, oids: list[int], *, outside: str | None = None) -> None:
    rows = _fetch(cur, "dependants", _DEPENDANTS_SQL, {"oids": oids}) if oids else []
    found = [_Dependant(*map(str, row)) for row in rows]
    found = [dependant for dependant in found if dependant.schema != outside]
    if found:
        raise WarehouseError(
            f"{failure}: {len(found)} object(s) read its views and would keep reading the old "
            f"ones, since PostgreSQL binds views to objects, not names: {'; '.join(map(str, found))}",
            hint="drop them, run this again, then recreate them on the new release; nothing changed",
        )


def _read_marker(cur: Cursor, schema: str) -> ReleaseMarker | None:
    if _relations(cur, schema, [MARKER_VIEW]).get(MARKER_VIEW, ("",))[0] != "v":
        return None
    sql = f"SELECT release_id, env, git_sha, switched_at FROM {qualify(schema, MARKER_VIEW)}"
    rows = _fetch(cur, "marker", sql)
    if len(rows) != 1:
        raise WarehouseError(
            f"the release marker {schema}.{MARKER_VIEW} holds {len(rows)} rows, not 1",
            hint="switch the environment again (deploy or rollback) to rewrite it",
        )
    release_id, env, git_sha, switched_at = rows[0]
    return ReleaseMarker(env=env, release_id=int(release_id), git_sha=git_sha, switched_at=switched_at)


def _our_views(cur: Cursor, schema: str) -> dict[str, tuple[str, str]]:
    """view -> (schema, relation) it reads, for the views releasekit made in `schema`: their
    comment names the one relation pg_depend says they read."""
    reads: dict[str, set[tuple[str | None, str, str]]] = {}
    for view, comment, source_schema, relation in _fetch(cur, "views", _VIEW_READS_SQL, (schema,)):
        reads.setdefault(view, set()).add((comment, source_schema, relation))
    ours = {}
    for view, found in reads.items():
        if view == MARKER_VIEW or len(found) != 1:
            continue
        [(comment, source_schema, relation)] = found
        if comment == _VIEW_COMMENT + qualify(source_schema, relation):
            ours[view] = (source_schema, relation)
    return ours


def _drop_relations(cur: Cursor, schema: str, names: list[str]) -> None:
    """Drop what exists of `names`, readers before what they read: physical relations read
    each other (a view model on a table model), and DROP without CASCADE refuses to drop a
    relation another one still reads. One outside `names` that reads them makes it fail."""
    kinds = _relations(cur, schema, names)
    present = {name: kinds[name] for name in names if kinds.get(name, ("",))[0] in _DROP_KINDS}
    for name in _readers_first(cur, present):
        kind = present[name][0]
        step = _Step(f"{_KIND_WORDS[kind]} {name!r}", f"DROP {_DROP_KINDS[kind]} {qualify(schema, name)}")
        _execute(cur, step)


def _readers(cur: Cursor, schema: str, names: list[str]) -> dict[str, list[str]]:
    oids = [oid for _, oid in _relations(cur, schema, names).values()]
    rows = _fetch(cur, "dependants", _DEPENDANTS_SQL, {"oids": oids}) if oids else []
    found: dict[str, list[str]] = {}
    for row in rows:  # readers among `names` themselves are left out by the query
        dependant = _Dependant(*map(str, row))
        found.setdefault(dependant.reads, []).append(f"{dependant.kind} {dependant.identity}")
    return found


def _readers_first(cur: Cursor, relations: Mapping[str, tuple[str, int]]) -> list[str]:
    by_oid = {oid: name for name, (_, oid) in relations.items()}
    edges = _fetch(cur, "dependencies", _READS_AMONG_SQL, {"oids": list(by_oid)}) if len(by_oid) > 1 else []
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in relations:
        order.add(name)
    for reader, read in edges:
        order.add(by_oid[int(read)], by_oid[int(reader)])  # the reader goes first
    return list(order.static_order())


def _drop_schema(cur: Cursor, schema: str) -> None:
    oids = [oid for _, oid in _relations(cur, schema).values()]
    _refuse_dependants(cur, f"could not drop schema {schema!r}", oids, outside=schema)
    _execute(cur, _Step(f"schema {schema!r}", f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE"))


@dataclass(frozen=True)
class _Grant:
    privilege: str  # SELECT, INSERT, ...
    role: str  # a role's name, or PUBLIC
    view: str | None = None  # carried over from this replaced view; None: on every view
    grantable: bool = False

    def on_view(self, schema: str, name: str) -> _Step:
        option = " WITH GRANT OPTION" if self.grantable else ""
        sql = f"GRANT {self.privilege} ON {qualify(schema, name)} TO {_grantee(self.role)}{option}"
        return _Step(f"grant {self.privilege} on {name!r} to {self.role!r}", sql)


def _grants(grants: Mapping[str, Sequence[str]]) -> tuple[_Grant, ...]:
    unknown = sorted(set(grants) - _PRIVILEGES)
    if unknown:
        raise WarehouseError(
            f"unknown privilege(s) for views: {', '.join(map(repr, unknown))}",
            hint=f"use {', '.join(sorted(_PRIVILEGES))}",
        )
    return tuple(_Grant(privilege.upper(), role) for privilege, roles in grants.items() for role in roles)


def _grantee(role: str) -> str:
    return "PUBLIC" if role.upper() == "PUBLIC" else quote(role)


def _view_grants(cur: Cursor, schema: str, names: list[str]) -> list[_Grant]:
    """What was granted on these views, by whoever, to anyone but their owner."""
    rows = _fetch(cur, "grants", _VIEW_GRANTS_SQL, (schema, names)) if names else []
    return [_Grant(str(priv), str(role), str(view), bool(option)) for view, priv, role, option in rows]


def _missing(
    cur: Cursor, schema: str, names: list[str], grants: Sequence[_Grant]
) -> list[tuple[_Grant, str]]:
    """(grant, view) pairs the view lacks. PUBLIC cannot be asked, so it is always granted."""
    public = [(grant, name) for grant in grants if grant.role.upper() == "PUBLIC" for name in names]
    asked = [grant for grant in grants if grant.role.upper() != "PUBLIC"]
    if not names or not asked:
        return public
    params = {
        "schema": schema,
        "names": names,
        "roles": [grant.role for grant in asked],
        "privileges": [grant.privilege for grant in asked],
    }
    by_key = {(grant.role, grant.privilege): grant for grant in asked}
    rows = _fetch(cur, "privileges", _LACKING_SQL, params)
    return public + [(by_key[(str(role), str(priv))], str(name)) for name, role, priv in rows]


def _marker_sql(view: str, marker: ReleaseMarker) -> str:
    return (
        f"CREATE VIEW {view} AS SELECT "
        f"CAST({int(marker.release_id)} AS bigint) AS release_id, "
        f"CAST({string_literal(marker.env)} AS text) AS env, "
        f"CAST({string_literal(marker.git_sha)} AS text) AS git_sha, "
        f"CAST({string_literal(marker.switched_at)} AS text) AS switched_at"
    )


def _batch(subject: str, steps: list[_Step]) -> _Step:
    # One round trip: the swap holds its locks for as short a time as possible.
    return _Step(subject, ";\n".join(step.sql for step in steps))


def _execute(cur: Cursor, step: _Step, params: Any = None) -> None:
    try:
        cur.execute(step.sql, params)
    except psycopg2.Error as exc:
        raise _StatementFailed(step.subject, exc) from exc


def _fetch(cur: Cursor, subject: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    _execute(cur, _Step(subject, sql), params)
    return list(cur.fetchall())


def _commit(con: Any) -> None:
    try:
        con.commit()
    except psycopg2.Error as exc:
        raise _StatementFailed("commit", exc) from exc


def _statement_error(failed: _StatementFailed, failure: str, hint: str | None) -> WarehouseError:
    if failed.subject == "commit" and failed.pgcode is None:
        hint = "the connection broke during COMMIT, so it may or may not have happened: read the marker"
    return WarehouseError(f"{failure}: {failed.subject}: {_describe(failed.cause)}", hint=hint)


def _describe(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    text = primary or str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{text} ({'; '.join(detail.splitlines())})" if detail else text


def _byte_length(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))


def _columns(cur: Cursor, schema: str, relation: str) -> list[tuple[str, str]]:
    rows = _fetch(cur, "columns", _COLUMNS_SQL, (schema, relation))
    return [(str(name), str(data_type)) for name, data_type in rows]


def _row_count(cur: Cursor, schema: str, relation: str) -> int:
    if not _columns(cur, schema, relation):
        raise missing_relation(schema, relation)
    return int(_fetch(cur, "count", f"SELECT count(*) FROM {qualify(schema, relation)}")[0][0])


def _executor(cur: Cursor) -> Execute:
    # _fetch passes no parameters, so psycopg2 leaves a `%` in the SQL alone.
    def execute(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        rows = _fetch(cur, "query", sql)
        return [column.name for column in cur.description], rows

    return execute


def _without_equality(data_type: str) -> bool:
    return data_type.removesuffix("[]") in _WITHOUT_EQUALITY


def _read_error(failed: _StatementFailed, failure: str, timeout_ms: int | None) -> WarehouseError:
    hint = None
    if failed.pgcode == _QUERY_CANCELED and timeout_ms is not None:
        hint = f"it ran longer than the statement timeout ({timeout_ms} ms): make it cheaper"
    elif failed.pgcode == _SYNTAX_ERROR:
        hint = "a query is one SELECT (WITH ... SELECT is fine); INSERT, CREATE and other writes are refused"
    return WarehouseError(f"{failure}: {_describe(failed.cause)}", hint=hint)
