"""The switch: how an environment's schema comes to serve a release, decided by capabilities.

Adapters give the statements; this module decides their order and what happens when one
fails, on the warehouse's `Capabilities.transactional_ddl`:

- Transactional DDL (DuckDB, PostgreSQL): every statement of the switch runs in ONE
  transaction. Readers see the old release or the new one, never a mix; a failure rolls
  everything back. The adapter says which statements (`switch_statements`): DuckDB
  replaces the views in place (`in_place`), PostgreSQL builds them in a staging schema and
  swaps them in.

- No transactional DDL (view by view): first verify that every relation the release reads
  exists, then switch only the views that change, one statement at a time, drop the views
  the release no longer has, and write the marker LAST, so the marker names the new release
  only once every view serves it. When a statement fails part-way, the views already
  switched (and the one that failed) get their saved definitions back, a view that did not
  exist is dropped again, and the switch raises the statement's WarehouseError: every view
  and the marker are as they were. Readers can see a mix while the switch runs; the engine
  has announced the switch in the ledger first, so a killed run is settled by the next one.
  A schema the switch created stays, empty, when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import (
    MARKER_VIEW,
    SWITCH_HINT,
    Capabilities,
    ReleaseMarker,
    Statement,
    check_switch_names,
)

__all__ = ["OneTransaction", "Session", "SwitchRequest", "ViewByView", "in_place", "switch_schema"]


class Session(Protocol):
    """A transaction the adapter opened: the statements of a switch run through it."""

    def execute(self, statement: Statement) -> None: ...


S = TypeVar("S", bound=Session)

RESTORE_FAILED_HINT = (
    "the schema may serve a mix of releases: switch it again (deploy or rollback); "
    "the marker still names the previous release"
)


@dataclass(frozen=True)
class SwitchRequest:
    """Make `schema` hold exactly: view -> SELECT * FROM physical_schema.relation, the
    marker, and none of the views in `dropped`."""

    schema: str
    views: Mapping[str, str]
    physical_schema: str
    marker: ReleaseMarker
    dropped: tuple[str, ...] = ()
    grants: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def failure(self) -> str:
        return f"could not switch schema {self.schema!r} to release {self.marker.release_id}"


class OneTransaction(Protocol[S]):
    """What a warehouse with transactional DDL gives the switch."""

    capabilities: Capabilities

    def check_switch(self, request: SwitchRequest) -> None:
        """Refuse, before any statement runs, a switch this warehouse cannot make."""
        ...

    def transact(
        self, work: Callable[[S], None], failure: str, *, hint: str | None, contended: Sequence[str]
    ) -> None:
        """Run `work` in one transaction (BEGIN ... COMMIT, ROLLBACK when it raises); a failing
        statement raises WarehouseError: `failure: subject: the database's message`, `hint`.
        `contended`: the schemas whose locks the work waits for."""
        ...

    def switch_statements(self, session: S, request: SwitchRequest) -> list[Statement]:
        """Every statement of the switch, in order, for one transaction; may read the catalog
        through `session` (and refuse what it finds)."""
        ...


@runtime_checkable
class ViewByView(OneTransaction[S], Protocol[S]):
    """What a warehouse gives the switch to go view by view (one statement per transaction,
    where it has transactions at all)."""

    def relations(self, schema: str) -> set[str]: ...

    def view_sources(self, schema: str) -> dict[str, tuple[str, str]]:
        """view -> (schema, relation) it reads, for the views releasekit made in `schema`."""
        ...

    def view_definitions(self, schema: str) -> dict[str, Statement]:
        """view -> the statement that makes it again as it is now (replacing what is there),
        for every view in `schema`."""
        ...

    def create_schema(self, schema: str) -> Statement: ...

    def replace_view(self, schema: str, name: str, physical_schema: str, relation: str) -> Statement: ...

    def drop_view(self, schema: str, name: str) -> Statement:
        """Drop the view if it exists."""
        ...

    def write_marker(self, schema: str, marker: ReleaseMarker) -> Statement: ...


def switch_schema(adapter: OneTransaction[S], request: SwitchRequest) -> None:
    """Make the schema hold the request (see the module docstring for how, per capability).
    ValueError for a caller's bug; WarehouseError when it cannot, and nothing changed."""
    check_switch_names(request.views, request.dropped)
    adapter.check_switch(request)
    if adapter.capabilities.transactional_ddl:
        _in_one_transaction(adapter, request)
    else:
        _view_by_view(_stepwise(adapter), request)


def in_place(adapter: ViewByView[S], request: SwitchRequest) -> list[Statement]:
    """The switch's statements where a view can be replaced in place (CREATE OR REPLACE):
    the schema, every view, the drops, then the marker."""
    schema, physical = request.schema, request.physical_schema
    statements = [adapter.create_schema(schema)]
    statements += [adapter.replace_view(schema, name, physical, rel) for name, rel in request.views.items()]
    statements += [adapter.drop_view(schema, name) for name in request.dropped]
    statements.append(adapter.write_marker(schema, request.marker))
    return statements


def _in_one_transaction(adapter: OneTransaction[S], request: SwitchRequest) -> None:
    def work(session: S) -> None:
        for statement in adapter.switch_statements(session, request):
            session.execute(statement)

    contended = (request.schema, request.physical_schema)
    adapter.transact(work, request.failure, hint=SWITCH_HINT, contended=contended)


def _stepwise(adapter: OneTransaction[S]) -> ViewByView[S]:
    if not isinstance(adapter, ViewByView):
        raise TypeError(
            f"{type(adapter).__name__} declares transactional_ddl=False but gives no view-by-view statements"
        )
    return adapter


def _view_by_view(adapter: ViewByView[S], request: SwitchRequest) -> None:
    if any(request.grants.values()):
        raise WarehouseError(
            f"{request.failure}: grants need a warehouse with transactional DDL",
            hint="remove `grants` for this environment; nothing changed",
        )
    _require_relations(adapter, request)
    saved = adapter.view_definitions(request.schema)
    steps = _changes(adapter, request, saved)
    done: list[str] = []
    try:
        for name, statement in steps:
            done.append(name)  # the failing one too: it may have half happened
            _run_alone(adapter, statement, request.failure, SWITCH_HINT)
    except BaseException as exc:
        _restore(adapter, request, saved, done, exc)
        raise


def _require_relations(adapter: ViewByView[S], request: SwitchRequest) -> None:
    found = adapter.relations(request.physical_schema)
    missing = [f"view {v!r} -> {r!r}" for v, r in request.views.items() if r not in found]
    if missing:
        raise WarehouseError(
            f"{request.failure}: schema {request.physical_schema!r} has no relation for {', '.join(missing)}",
            hint=SWITCH_HINT,
        )


def _changes(
    adapter: ViewByView[S], request: SwitchRequest, saved: Mapping[str, Statement]
) -> list[tuple[str, Statement]]:
    """(view, statement) in order: the schema, the views that change, the drops, the marker."""
    schema, physical = request.schema, request.physical_schema
    live = adapter.view_sources(schema)
    steps = [("", adapter.create_schema(schema))]  # if it does not exist
    steps += [
        (name, adapter.replace_view(schema, name, physical, relation))
        for name, relation in request.views.items()
        if live.get(name) != (physical, relation)
    ]
    steps += [(name, adapter.drop_view(schema, name)) for name in request.dropped if name in saved]
    steps.append((MARKER_VIEW, adapter.write_marker(schema, request.marker)))
    return steps


def _run_alone(adapter: ViewByView[S], statement: Statement, failure: str, hint: str) -> None:
    adapter.transact(lambda session: session.execute(statement), failure, hint=hint, contended=())


def _restore(
    adapter: ViewByView[S],
    request: SwitchRequest,
    saved: Mapping[str, Statement],
    done: Sequence[str],
    cause: BaseException,
) -> None:
    """Put back, newest first, every view the switch touched; raise when that fails too."""
    failure = f"{request.failure}, and could not put back the views it had switched"
    for name in reversed([name for name in done if name]):
        before = saved.get(name) or adapter.drop_view(request.schema, name)
        try:
            _run_alone(adapter, before, failure, RESTORE_FAILED_HINT)
        except WarehouseError as exc:
            raise exc from cause
