"""The warehouse seam: a small Protocol with capability flags.

The engine branches on capabilities, never on the adapter's class. Every adapter passes
one contract test suite (tests/warehouse/test_contract.py, test_inspection.py).

Besides switching, a warehouse answers read-only questions for `releasekit check`: the
columns and row count of a relation, how the rows of two relations differ (`compare_rows`,
done in the warehouse with EXCEPT, never by fetching the tables), and the first rows of a
query (logic tests). The SQL those share, and the checks on a query's text, live in
`inspection`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from releasekit.config.model import Connection

__all__ = [
    "MARKER_VIEW",
    "Capabilities",
    "Connection",
    "QueryResult",
    "ReleaseMarker",
    "RowComparison",
    "Statement",
    "StatementHook",
    "Warehouse",
]

Row = tuple[object, ...]


@dataclass(frozen=True)
class Capabilities:
    # Many DDL statements commit or roll back as one: a switch is one transaction. Without
    # it a switch goes view by view and puts back what it changed when a step fails
    # (releasekit.warehouse.switch decides which).
    transactional_ddl: bool
    zero_copy_clone: bool = False  # a table can be cloned without copying its data
    grants: bool = False  # GRANT on views: a switch can give consumers their privileges
    # Names longer than this many bytes are cut (PostgreSQL: 63): a plan refuses view names
    # that would not fit before anything is built. None: no limit.
    max_identifier_bytes: int | None = None
    # One process at a time may open it (DuckDB's file lock): a deploy keeps it open from its
    # plan to its switch, so no other process slips in while dbt needs it.
    single_process: bool = False


@dataclass(frozen=True)
class ReleaseMarker:
    """What an environment's schema says is live; lives beside its views."""

    env: str
    release_id: int
    git_sha: str
    switched_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class Statement:
    """One statement an adapter runs, and what it touches (named in the error message)."""

    subject: str
    sql: str


# Told of each statement a switch runs, before it runs; raising fails that statement. An
# adapter takes one as `on_statement`, so a test can hold or fail a switch part-way.
StatementHook = Callable[[Statement], None]

MARKER_VIEW = "_releasekit_release"
# What a failed switch says: the transaction rolled back, or (view by view) every view it
# switched was put back.
SWITCH_HINT = (
    "nothing changed: the schema still serves its previous release; "
    "fix the cause above and run the switch again"
)


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
        """Make `schema` hold exactly: view name -> select * from physical relation, plus the
        marker; drop the views named in `drop`. With transactional DDL readers see old or new,
        never a mix; without, the marker moves last (releasekit.warehouse.switch decides).
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

    def profile(self, schema: str, relation: str) -> dict[str, float | None]:
        """Measure a table or view in one aggregate query (warehouse.profile names the
        metrics); read-only. NotFoundError when it does not exist."""
        ...

    def data_version(self, relation: str, mode: str) -> str:
        """The data version of a source relation as dbt renders it (engine.data): `mode`
        checksum or rowcount. WarehouseError when it cannot be read (it does not exist)."""
        ...

    def copy_relation(self, schema: str, source: str, target: str) -> None:
        """Create table `target` in `schema` holding the rows of `source` (a zero-copy
        clone where `capabilities.zero_copy_clone`): an incremental model's or snapshot's
        refresh starts from it, never writing the live relation."""
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
