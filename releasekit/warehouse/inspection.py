"""What the adapters share to answer `releasekit check`'s read-only questions (see base):
the SQL of `compare_rows` (EXCEPT and INTERSECT, run in the warehouse) and of `query` (one
SELECT, wrapped as a subquery), and the checks on a query's text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from releasekit.errors import NotFoundError, WarehouseError
from releasekit.warehouse.base import QueryResult, Row, RowComparison
from releasekit.warehouse.naming import qualify, quote

# Run one SELECT inside the adapter's read-only transaction: (column names, rows).
Execute = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


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


def data_version_sql(relation: str, mode: str, row_hash: str) -> str:
    """The one query that reads a source's data version (engine.data): its row count, and
    in `checksum` mode the sum of `row_hash` (a hash of the whole row `t`) over its rows,
    which no insert, update or delete leaves equal but by a collision. `relation` is the
    source's relation as dbt renders it (quoted)."""
    if mode == "rowcount":
        return f"SELECT count(*), 0 FROM {relation}"
    return f"SELECT count(*), coalesce(sum({row_hash}), 0) FROM {relation} AS t"


def data_version_of(mode: str, rows: object, total: object) -> str:
    """`<mode>:<rows>[:<digest of the checksum>]`: the row count stays readable for reports."""
    if mode == "rowcount":
        return f"rowcount:{int(str(rows))}"
    return f"checksum:{int(str(rows))}:{hashlib.sha256(str(total).encode()).hexdigest()[:16]}"


def rows_of(data_version: str) -> int | None:
    """The row count a data version records, if it reads."""
    parts = data_version.split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
