"""The warehouse seam: a small Protocol with capability flags.

The engine branches on capabilities, never on the adapter's class. Every adapter passes
one contract test suite (tests/warehouse/test_contract.py, test_inspection.py).

Besides switching, a warehouse answers read-only questions for `releasekit check`: the
columns and row count of a relation, how the rows of two relations differ (`compare_rows`,
done in the warehouse with EXCEPT, never by fetching the tables), and the first rows of a
query (logic tests). The SQL those share, and the checks on a query's text, live here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from releasekit.config.model import Connection
from releasekit.errors import NotFoundError, WarehouseError
from releasekit.warehouse.naming import qualify, quote

__all__ = [
    "MARKER_VIEW",
    "Capabilities",
    "Connection",
    "QueryResult",
    "ReleaseMarker",
    "RowComparison",
    "Warehouse",
]

Row = tuple[object, ...]
# Run one SELECT inside the adapter's read-only transaction: (column names, rows).
Execute = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class Capabilities:
    transactional_ddl: bool  # many DDL statements commit or roll back as one
    schema_rename: bool  # ALTER SCHEMA ... RENAME works (swap a staged schema in)
    zero_copy_clone: bool = False
    grants: bool = False  # GRANT on views: a switch can give consumers their privileges


@dataclass(frozen=True)
class ReleaseMarker:
    """What an environment's schema says is live; lives beside its views."""

    env: str
    release_id: int
    git_sha: str
    switched_at: str  # ISO 8601, UTC


MARKER_VIEW = "_releasekit_release"


@dataclass(frozen=True)
class RowComparison:
    """How the rows of `after` differ from those of `before`, matched on `key`."""

    key: tuple[str, ...]
    added: int  # keys only in after
    removed: int  # keys only in before
    changed: int  # keys in both whose compared columns differ (NULL equals NULL)
    added_examples: tuple[Row, ...] = ()  # a few key values of each kind, in key order
    removed_examples: tuple[Row, ...] = ()
    changed_examples: tuple[Row, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class QueryResult:
    """The first rows of a read-only query, and how many it returned in all."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]  # at most the limit asked for, in the query's order
    total: int

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)


class Warehouse(Protocol):
    capabilities: Capabilities

    def relations(self, schema: str) -> set[str]:
        """Names of every table and view in `schema` (empty if the schema does not exist)."""
        ...

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
        """Atomically make `schema` hold exactly: view name -> select * from physical relation,
        plus the marker; drop the views named in `drop`. Readers see old or new, never a mix.
        `grants` (privilege -> roles; needs `capabilities.grants`) hold on every view after
        the switch, and the roles get USAGE on the schema; a replaced view's own grants
        carry over to the view that replaces it."""
        ...

    def read_marker(self, schema: str) -> ReleaseMarker | None: ...

    def view_targets(self, schema: str) -> dict[str, str]:
        """view name -> the physical relation name it reads, for views releasekit made."""
        ...

    def drop_relations(self, schema: str, names: Iterable[str]) -> None: ...

    def readers(self, schema: str, names: Iterable[str]) -> dict[str, list[str]]:
        """name -> the objects outside `names` that read it (a user's view on a physical
        relation), for the names that have any. A warehouse that binds views by name at
        query time (DuckDB) cannot tell, and returns {}."""
        ...

    def drop_schema(self, schema: str) -> None:
        """Drop the schema and everything in it (a branch environment's teardown); no error
        when it does not exist."""
        ...

    def columns(self, schema: str, relation: str) -> list[tuple[str, str]]:
        """(name, data type as the warehouse spells it) of a table or view, in column order;
        empty when the relation does not exist."""
        ...

    def row_count(self, schema: str, relation: str) -> int:
        """Rows in a table or view; NotFoundError when it does not exist."""
        ...

    def compare_rows(
        self,
        before: tuple[str, str],
        after: tuple[str, str],
        key: Sequence[str],
        columns: Sequence[str],
        *,
        examples: int = 5,
    ) -> RowComparison:
        """Match the rows of two (schema, relation)s on `key`, compare `columns` (the
        columns both share; key columns are skipped), NULL-safe, in the warehouse.
        NotFoundError when a relation does not exist; WarehouseError when a column is
        missing on a side or the key is not unique on a side (naming it and a key)."""
        ...

    def query(self, sql: str, *, limit: int) -> QueryResult:
        """Run one SELECT read-only (it cannot change the warehouse) and return its first
        `limit` rows. WarehouseError carries the database's message when it fails."""
        ...

    def close(self) -> None: ...


def check_switch_names(views: Mapping[str, str], dropped: Sequence[str]) -> None:
    """Refuse a switch that names the marker as a model view, or switches and drops one
    view at once: both are caller bugs, refused before any statement runs."""
    if MARKER_VIEW in views or MARKER_VIEW in dropped:
        raise ValueError(f"{MARKER_VIEW!r} is releasekit's marker, not a model view")
    both = sorted(set(views) & set(dropped))
    if both:
        raise ValueError(f"views both switched and dropped: {both}")


def missing_relation(schema: str, relation: str) -> NotFoundError:
    return NotFoundError(
        f"relation {qualify(schema, relation)} does not exist",
        hint="check the schema and relation names; deploy the environment if it is new",
    )


def describe_row(names: Sequence[str], values: Sequence[object], *, width: int = 60) -> str:
    """`name=value, ...` for messages: strings quoted and cut to `width`, None as NULL."""
    pairs = zip(names, values, strict=True)
    return ", ".join(f"{name}={_describe_value(value, width)}" for name, value in pairs)


def _describe_value(value: object, width: int) -> str:
    if value is None:
        return "NULL"
    if not isinstance(value, str):
        return str(value)
    text = value if len(value) <= width else value[: width - 3] + "..."
    return "'" + text.replace("'", "''") + "'"


# Tokens that can hold a `;` that does not end a statement: comments, strings (E'' strings
# with backslash escapes), quoted identifiers and PostgreSQL/DuckDB dollar quotes.
_SQL_TOKEN = re.compile(
    r"""(?P<blank>\s+|--[^\n]*|/\*.*?\*/)
    |(?P<quoted>[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*"
        |(?<![\w$])\$(?P<tag>(?:[^\W\d]\w*)?)\$.*?\$(?P=tag)\$)
    |(?P<end>;)
    |[^\s;'"$/-]+|.""",
    re.VERBOSE | re.DOTALL,
)
_ONE_HINT = "a query is one SELECT statement: remove what follows its `;`"


def one_statement(sql: str) -> str:
    """`sql` without the `;` that may end it (and blanks or comments after that).

    A second statement is refused: it could end the read-only transaction a query runs in
    (`COMMIT; INSERT ...`). The scan knows comments, strings and quoted names, not SQL.
    """
    end: int | None = None
    code = False
    for token in _SQL_TOKEN.finditer(sql):
        kind = token.lastgroup
        if kind == "end" and end is None:
            end = token.start()
        elif kind not in ("blank", "end"):
            if end is not None:
                line = sql.count("\n", 0, token.start()) + 1
                raise WarehouseError(f"the query holds a second statement at line {line}", hint=_ONE_HINT)
            code = True
    if not code:
        raise WarehouseError("the query is empty", hint=_ONE_HINT)
    return sql if end is None else sql[:end]


def run_query(execute: Execute, statement: str, limit: int) -> QueryResult:
    """The first `limit` rows of `statement` (from one_statement), and how many it returns:
    counted by a second query only when there are more than `limit`."""
    if limit < 0:
        raise ValueError(f"a query limit cannot be negative, got {limit}")
    # The newline ends a trailing `--` comment; as a subquery, DDL and DML are syntax errors.
    inner = f"(\n{statement}\n) AS {quote('releasekit_query')}"
    columns, rows = execute(f"SELECT * FROM {inner} LIMIT {int(limit) + 1}")
    total = len(rows) if len(rows) <= limit else int(execute(f"SELECT count(*) FROM {inner}")[1][0][0])
    return QueryResult(columns=tuple(columns), rows=tuple(rows[:limit]), total=total)


@dataclass(frozen=True)
class Side:
    """One relation of a comparison, with its columns (name -> type, from `columns`)."""

    name: tuple[str, str]  # (schema, relation)
    types: Mapping[str, str]


def compare_relations(
    execute: Execute,
    before: Side,
    after: Side,
    key: Sequence[str],
    columns: Sequence[str],
    *,
    examples: int,
    as_text: Callable[[str], bool] = lambda data_type: False,
) -> RowComparison:
    """Warehouse.compare_rows over `execute`, in set operations the warehouse runs: EXCEPT
    and INTERSECT treat NULL as equal to NULL, and hash or sort as a join on `=` would.
    A column of different types on the two sides, or of a type `as_text` names (one without
    equality), is compared as text."""
    if examples < 0:
        raise ValueError(f"examples cannot be negative, got {examples}")
    plan = _plan(before, after, key, columns, as_text)
    for side in (before, after):
        _require_unique(execute, side, plan.key)
    added, removed, changed = execute(plan.counts())[1][0]
    found: dict[str, list[Row]] = {kind: [] for kind in _KINDS}
    for kind, *values in execute(plan.examples(examples))[1] if examples else []:
        found[str(kind)].append(tuple(values))
    return RowComparison(
        key=plan.key,
        added=int(added),
        removed=int(removed),
        changed=int(changed),
        added_examples=tuple(found["added"]),
        removed_examples=tuple(found["removed"]),
        changed_examples=tuple(found["changed"]),
    )


_KINDS = ("added", "removed", "changed")
_UNIQUE_HINT = "rows are matched on a key unique on both sides: pick another key or deduplicate the model"


@dataclass(frozen=True)
class _Comparison:
    before: tuple[str, str]
    after: tuple[str, str]
    key: tuple[str, ...]
    compared: tuple[str, ...]
    text: frozenset[str]  # columns compared as text

    def counts(self) -> str:
        return self._sets() + "SELECT " + ", ".join(f"(SELECT count(*) FROM {quote(k)})" for k in _KINDS)

    def examples(self, limit: int) -> str:
        order = ", ".join(str(position + 2) for position in range(len(self.key)))
        parts = [
            f"SELECT * FROM (SELECT '{kind}' AS {quote('kind')}, * FROM {quote(kind)} "
            f"ORDER BY {order} LIMIT {int(limit)}) AS {quote('some_' + kind)}"
            for kind in _KINDS
        ]
        return self._sets() + "\nUNION ALL ".join(parts)

    def _sets(self) -> str:
        both = self.key + self.compared
        keys = ", ".join(quote(f"c{position}") for position in range(len(self.key)))
        differ = f"({self._select(both, self.before)} EXCEPT {self._select(both, self.after)})"
        return (
            f"WITH {quote('removed')} AS ({self._select(self.key, self.before)} "
            f"EXCEPT {self._select(self.key, self.after)}),\n"
            f"{quote('added')} AS ({self._select(self.key, self.after)} "
            f"EXCEPT {self._select(self.key, self.before)}),\n"
            f"{quote('changed')} AS (SELECT {keys} FROM {differ} AS {quote('differ')} "
            f"INTERSECT {self._select(self.key, self.after)})\n"
        )

    def _select(self, names: Sequence[str], relation: tuple[str, str]) -> str:
        items = ", ".join(f"{self._expr(name)} AS {quote(f'c{i}')}" for i, name in enumerate(names))
        return f"SELECT {items} FROM {qualify(*relation)}"

    def _expr(self, name: str) -> str:
        return f"CAST({quote(name)} AS VARCHAR)" if name in self.text else quote(name)


def _plan(
    before: Side, after: Side, key: Sequence[str], columns: Sequence[str], as_text: Callable[[str], bool]
) -> _Comparison:
    if isinstance(key, str) or not key:
        raise ValueError(f"compare_rows needs a sequence of key columns, got {key!r}")
    keys = tuple(dict.fromkeys(key))
    compared = tuple(name for name in dict.fromkeys(columns) if name not in keys)
    for side in (before, after):
        if not side.types:
            raise missing_relation(*side.name)
        _require_columns(side, keys, "key column")
        _require_columns(side, compared, "column")
    text = frozenset(
        name
        for name in keys + compared
        if before.types[name] != after.types[name] or as_text(before.types[name])
    )
    return _Comparison(before.name, after.name, keys, compared, text)


def _require_columns(side: Side, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in side.types]
    if missing:
        raise WarehouseError(
            f"cannot compare rows: {qualify(*side.name)} has no {what} {', '.join(map(repr, missing))} "
            f"(its columns: {', '.join(side.types)})",
            hint="compare only the columns both sides share",
        )


def _require_unique(execute: Execute, side: Side, key: tuple[str, ...]) -> None:
    names = ", ".join(map(quote, key))
    sql = f"SELECT {names}, count(*) FROM {qualify(*side.name)} GROUP BY {names} HAVING count(*) > 1 LIMIT 1"
    rows = execute(sql)[1]
    if rows:
        *values, count = rows[0]
        raise WarehouseError(
            f"cannot compare rows: the key ({', '.join(key)}) is not unique in {qualify(*side.name)}: "
            f"{count} rows have {describe_row(key, values)}",
            hint=_UNIQUE_HINT,
        )
