"""The switch's view-by-view path (no transactional DDL), on a real DuckDB file.

`ViewByViewDuckDB` is DuckDB declaring `transactional_ddl=False`: releasekit.warehouse.switch
then verifies every target, switches only the changed views one statement at a time, writes
the marker last, and puts back what it switched when a statement fails. Failures are
injected with the adapter's statement hook, or by dropping a target from a second
connection between the verification and the switch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, SWITCH_HINT, Capabilities, Statement
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.switch import SwitchRequest, in_place
from tests.support.warehouse import duckdb_connection, make_marker

ENV, PHYSICAL = "prod", "rk__physical"


class ViewByViewDuckDB(DuckDBWarehouse):
    """DuckDB, switched as a warehouse without transactional DDL (Spark) would be."""

    capabilities: Capabilities = dataclasses.replace(DuckDBWarehouse.capabilities, transactional_ddl=False)


@dataclasses.dataclass
class Hook:
    """Records every statement; runs `before` ahead of the statement numbered `at` (1-based,
    counting the switch's own statements, not BEGIN/COMMIT)."""

    at: int | None = None
    before: Callable[[Statement], None] | None = None
    seen: list[Statement] = dataclasses.field(default_factory=list)

    def __call__(self, statement: Statement) -> None:
        if statement.subject in ("transaction", "commit"):
            return
        self.seen.append(statement)
        if len(self.seen) == self.at and self.before is not None:
            self.before(statement)


class Injected(WarehouseError):
    pass


def fail(statement: Statement) -> None:
    raise Injected(f"injected failure before {statement.subject}")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def side(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    # Same process, same file: DuckDB shares the database between the connections.
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA {PHYSICAL}")
    for name in ("a", "b", "c"):
        for release in (1, 2):
            table = qualify(PHYSICAL, f"{name}__r{release}")
            con.execute(f"CREATE TABLE {table} AS SELECT {release} AS release_id")
    yield con
    con.close()


@pytest.fixture
def hook() -> Hook:
    return Hook()


@pytest.fixture
def warehouse(path: Path, side: Any, hook: Hook) -> Iterator[ViewByViewDuckDB]:
    opened = ViewByViewDuckDB(duckdb_connection(path), on_statement=hook)
    yield opened
    opened.close()


def release(release_id: int, names: str = "abc") -> dict[str, str]:
    return {name: f"{name}__r{release_id}" for name in names}


def switch(
    warehouse: DuckDBWarehouse, release_id: int, names: str = "abc", drop: tuple[str, ...] = ()
) -> None:
    marker = make_marker(release_id)
    warehouse.switch(ENV, release(release_id, names), physical_schema=PHYSICAL, marker=marker, drop=drop)


def state(side: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every view of the schema, as its definition (the marker's holds the release)."""
    rows = side.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = ? AND NOT internal", [ENV]
    ).fetchall()
    return {str(name): str(sql) for name, sql in rows}


def test_the_capability_sends_the_switch_view_by_view(warehouse: ViewByViewDuckDB, hook: Hook) -> None:
    switch(warehouse, 1)

    # One statement per transaction: BEGIN, the statement, COMMIT; never two in one.
    subjects = [statement.subject for statement in hook.seen]
    assert subjects == [
        f"schema {ENV!r}",
        f"view 'a' -> {PHYSICAL}.a__r1",
        f"view 'b' -> {PHYSICAL}.b__r1",
        f"view 'c' -> {PHYSICAL}.c__r1",
        f"marker view {MARKER_VIEW!r}",
    ]
    assert warehouse.view_targets(ENV) == release(1)
    assert warehouse.read_marker(ENV) == make_marker(1)


def test_only_changed_views_switch_drops_follow_and_the_marker_is_last(
    warehouse: ViewByViewDuckDB, hook: Hook, side: Any
) -> None:
    switch(warehouse, 1)
    hook.seen.clear()

    views = {"a": "a__r1", "b": "b__r2"}  # a stays, b changes, c goes
    warehouse.switch(ENV, views, physical_schema=PHYSICAL, marker=make_marker(2), drop=["c"])

    subjects = [statement.subject for statement in hook.seen]
    assert subjects == [
        f"schema {ENV!r}",
        f"view 'b' -> {PHYSICAL}.b__r2",
        "view 'c'",
        f"marker view {MARKER_VIEW!r}",
    ]
    assert warehouse.view_targets(ENV) == views
    assert warehouse.relations(ENV) == {"a", "b", MARKER_VIEW}
    assert warehouse.read_marker(ENV) == make_marker(2)
    assert side.execute(f"SELECT release_id FROM {qualify(ENV, 'b')}").fetchall() == [(2,)]


def test_a_missing_target_is_refused_before_anything_changes(
    warehouse: ViewByViewDuckDB, hook: Hook, side: Any
) -> None:
    switch(warehouse, 1)
    before, hook.seen[:] = state(side), []

    views = {**release(2), "d": "d__r2"}
    with pytest.raises(WarehouseError) as raised:
        warehouse.switch(ENV, views, physical_schema=PHYSICAL, marker=make_marker(2))

    assert f"schema {PHYSICAL!r} has no relation for view 'd' -> 'd__r2'" in str(raised.value)
    assert raised.value.hint == SWITCH_HINT
    assert hook.seen == [] and state(side) == before


@pytest.mark.parametrize("at", [2, 3, 4, 5])  # each view of release 2, then the marker
def test_a_failure_part_way_puts_every_view_and_the_marker_back(
    warehouse: ViewByViewDuckDB, hook: Hook, side: Any, at: int
) -> None:
    switch(warehouse, 1)
    before, hook.seen[:] = state(side), []
    hook.at, hook.before = at, fail

    with pytest.raises(Injected):
        switch(warehouse, 2, drop=())

    assert state(side) == before
    assert warehouse.view_targets(ENV) == release(1)
    assert warehouse.read_marker(ENV) == make_marker(1)
    # The views switched before the failure were put back, newest first.
    put_back = [s.subject for s in hook.seen[at:]]
    assert put_back == [f"view {name!r} as it was" for name in ["a", "b", "c", MARKER_VIEW][: at - 1][::-1]]


def test_a_target_that_vanishes_after_the_check_fails_the_switch_and_changes_nothing(
    warehouse: ViewByViewDuckDB, hook: Hook, side: Any
) -> None:
    switch(warehouse, 1, names="ab")
    before, hook.seen[:] = state(side), []
    hook.at = 1  # the schema statement: after the targets were verified, before any view
    hook.before = lambda _: side.execute(f"DROP TABLE {qualify(PHYSICAL, 'b__r2')}")

    with pytest.raises(WarehouseError) as raised:
        switch(warehouse, 2, names="abc", drop=())

    message = str(raised.value)
    assert message.startswith(f"could not switch schema {ENV!r} to release 2: view 'b' -> {PHYSICAL}.b__r2: ")
    assert "b__r2" in message and raised.value.hint == SWITCH_HINT
    assert state(side) == before  # a is back on release 1, c never came
    assert warehouse.read_marker(ENV) == make_marker(1)


def test_a_first_switch_that_fails_leaves_no_view_and_no_marker(
    warehouse: ViewByViewDuckDB, hook: Hook, side: Any
) -> None:
    hook.at, hook.before = 5, fail  # the marker

    with pytest.raises(Injected):
        switch(warehouse, 1)

    assert state(side) == {}
    assert warehouse.read_marker(ENV) is None


def test_when_putting_back_fails_too_the_error_says_the_schema_may_be_mixed(
    warehouse: ViewByViewDuckDB, hook: Hook, side: Any
) -> None:
    switch(warehouse, 1)
    hook.seen.clear()

    def vanish_and_fail(statement: Statement) -> None:
        side.execute(f"DROP TABLE {qualify(PHYSICAL, 'a__r1')}")  # what a's old view read
        fail(statement)

    hook.at, hook.before = 3, vanish_and_fail  # after a switched, before b

    with pytest.raises(WarehouseError) as raised:
        switch(warehouse, 2)

    assert "could not put back the views it had switched" in str(raised.value)
    assert raised.value.hint is not None and "mix" in raised.value.hint
    assert isinstance(raised.value.__cause__, Injected)
    assert warehouse.read_marker(ENV) == make_marker(1)  # the marker never moved


def test_in_place_statements_are_the_transactional_switch_of_duckdb(path: Path, side: Any) -> None:
    with DuckDBWarehouse(duckdb_connection(path)) as warehouse:
        request = SwitchRequest(ENV, release(1), PHYSICAL, make_marker(1), ("old",))
        subjects = [statement.subject for statement in in_place(warehouse, request)]

    assert subjects == [
        f"schema {ENV!r}",
        *[f"view {name!r} -> {PHYSICAL}.{name}__r1" for name in "abc"],
        "view 'old'",
        f"marker view {MARKER_VIEW!r}",
    ]


def test_a_transactional_switch_failing_part_way_rolls_back_as_one(path: Path, side: Any) -> None:
    hook = Hook()
    with DuckDBWarehouse(duckdb_connection(path), on_statement=hook) as warehouse:
        switch(warehouse, 1)
        before, hook.seen[:] = state(side), []
        hook.at, hook.before = 3, fail

        with pytest.raises(Injected):
            switch(warehouse, 2)

        assert [s.subject for s in hook.seen][3:] == []  # nothing put back: the rollback did it
        assert state(side) == before
        assert warehouse.read_marker(ENV) == make_marker(1)
