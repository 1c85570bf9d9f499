"""The contract every warehouse adapter passes (parametrized in conftest.ADAPTER_TYPES)."""

from __future__ import annotations

import pytest

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, Capabilities, ReleaseMarker, Warehouse
from releasekit.warehouse.naming import qualify
from tests.support.warehouse import MakeTable, RunSQL, Schemas, make_marker


def _release(make_table: MakeTable, physical: str, release_id: int, models: list[str]) -> dict[str, str]:
    """Build one physical table per model for a release; return view -> relation."""
    views = {}
    for model in models:
        relation = f"{model}__r{release_id}"
        make_table(physical, relation, release_id)
        views[model] = relation
    return views


def _served(sql: RunSQL, schema: str, view: str) -> int:
    return int(sql(f"SELECT release_id FROM {qualify(schema, view)}")[0][0])


def test_declares_capabilities(warehouse: Warehouse) -> None:
    assert isinstance(warehouse.capabilities, Capabilities)


def test_switch_creates_views_and_marker(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, make_table: MakeTable
) -> None:
    views = _release(make_table, schemas.physical, 1, ["orders", "customers"])

    warehouse.switch(schemas.env, views, physical_schema=schemas.physical, marker=make_marker(1))

    assert warehouse.relations(schemas.env) == {"orders", "customers", MARKER_VIEW}
    assert warehouse.view_targets(schemas.env) == views
    assert warehouse.read_marker(schemas.env) == make_marker(1)
    assert _served(sql, schemas.env, "orders") == 1


def test_second_switch_replaces_drops_and_leaves_other_objects(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, make_table: MakeTable
) -> None:
    first = _release(make_table, schemas.physical, 1, ["orders", "customers", "old"])
    warehouse.switch(schemas.env, first, physical_schema=schemas.physical, marker=make_marker(1))
    sql(f"CREATE TABLE {qualify(schemas.env, 'notes')} AS SELECT 1 AS x")
    second = _release(make_table, schemas.physical, 2, ["orders", "customers"])

    warehouse.switch(
        schemas.env, second, physical_schema=schemas.physical, marker=make_marker(2), drop=["old"]
    )

    assert warehouse.view_targets(schemas.env) == second
    assert warehouse.relations(schemas.env) == {"orders", "customers", "notes", MARKER_VIEW}
    assert warehouse.read_marker(schemas.env) == make_marker(2)
    assert _served(sql, schemas.env, "customers") == 2


def test_switch_without_views_writes_only_the_marker(warehouse: Warehouse, schemas: Schemas) -> None:
    warehouse.switch(schemas.env, {}, physical_schema=schemas.physical, marker=make_marker(7))

    assert warehouse.relations(schemas.env) == {MARKER_VIEW}
    assert warehouse.read_marker(schemas.env) == make_marker(7)


def test_missing_schema_is_empty(warehouse: Warehouse) -> None:
    assert warehouse.relations("no_such_schema") == set()
    assert warehouse.read_marker("no_such_schema") is None
    assert warehouse.view_targets("no_such_schema") == {}


def test_schema_without_marker_has_none(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    sql(f"CREATE SCHEMA {qualify(schemas.env)}")

    assert warehouse.read_marker(schemas.env) is None


def test_view_targets_ignore_views_releasekit_did_not_make(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, make_table: MakeTable
) -> None:
    views = _release(make_table, schemas.physical, 1, ["orders"])
    warehouse.switch(schemas.env, views, physical_schema=schemas.physical, marker=make_marker(1))
    source = qualify(schemas.physical, "orders__r1")
    sql(f"CREATE VIEW {qualify(schemas.env, 'constant')} AS SELECT 1 AS x")
    sql(f"CREATE VIEW {qualify(schemas.env, 'narrow')} AS SELECT release_id FROM {source}")
    sql(f"CREATE VIEW {qualify(schemas.env, 'filtered')} AS SELECT * FROM {source} WHERE true")

    assert warehouse.view_targets(schemas.env) == {"orders": "orders__r1"}


def test_drop_relations_drops_tables_and_views(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, make_table: MakeTable
) -> None:
    make_table(schemas.env, "a_table", 1)
    make_table(schemas.env, "kept", 1)
    sql(f"CREATE VIEW {qualify(schemas.env, 'a_view')} AS SELECT 1 AS x")

    warehouse.drop_relations(schemas.env, ["a_table", "a_view", "never_existed"])

    assert warehouse.relations(schemas.env) == {"kept"}


def test_drop_relations_in_missing_schema_is_a_no_op(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas
) -> None:
    warehouse.drop_relations(schemas.env, ["a"])

    # Nothing to drop, and nothing made: the schema is still missing.
    found = sql(f"SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{schemas.env}'")
    assert int(found[0][0]) == 0
    assert warehouse.relations(schemas.env) == set()


@pytest.mark.parametrize("failure", ["missing physical relation", "view name taken by a table"])
def test_failed_switch_leaves_the_previous_release(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, make_table: MakeTable, failure: str
) -> None:
    first = _release(make_table, schemas.physical, 1, ["orders", "customers"])
    warehouse.switch(schemas.env, first, physical_schema=schemas.physical, marker=make_marker(1))
    second = _release(make_table, schemas.physical, 2, ["orders", "customers"])
    if failure == "missing physical relation":
        second["broken"] = "not_built__r2"
    else:
        make_table(schemas.env, "broken", 0)
        second["broken"] = second["orders"]

    with pytest.raises(WarehouseError) as raised:
        warehouse.switch(schemas.env, second, physical_schema=schemas.physical, marker=make_marker(2))

    assert schemas.env in str(raised.value) and "broken" in str(raised.value)
    assert warehouse.view_targets(schemas.env) == first
    assert warehouse.read_marker(schemas.env) == make_marker(1)
    assert _served(sql, schemas.env, "orders") == 1


def test_failed_switch_into_a_new_schema_creates_nothing(warehouse: Warehouse, schemas: Schemas) -> None:
    with pytest.raises(WarehouseError):
        warehouse.switch(
            schemas.env,
            {"orders": "not_built"},
            physical_schema=schemas.physical,
            marker=make_marker(1),
        )

    assert warehouse.relations(schemas.env) == set()
    assert warehouse.read_marker(schemas.env) is None


def test_switch_dropping_a_table_fails_and_keeps_it(
    warehouse: Warehouse, schemas: Schemas, make_table: MakeTable
) -> None:
    # `drop` names views; a table under that name is not releasekit's to remove here.
    make_table(schemas.env, "precious", 1)

    with pytest.raises(WarehouseError, match="precious"):
        warehouse.switch(
            schemas.env,
            {},
            physical_schema=schemas.physical,
            marker=make_marker(1),
            drop=["precious"],
        )

    assert warehouse.relations(schemas.env) == {"precious"}


@pytest.mark.parametrize(
    ("views", "drop"),
    [({MARKER_VIEW: "x__r1"}, []), ({}, [MARKER_VIEW]), ({"orders": "orders__r1"}, ["orders"])],
)
def test_switch_refuses_contradictory_names(
    warehouse: Warehouse, schemas: Schemas, views: dict[str, str], drop: list[str]
) -> None:
    with pytest.raises(ValueError):
        warehouse.switch(
            schemas.env, views, physical_schema=schemas.physical, marker=make_marker(1), drop=drop
        )

    assert warehouse.relations(schemas.env) == set()


HOSTILE = 'feature/x"; DROP SCHEMA main; --$(id)`whoami`ü'


def test_hostile_identifiers_and_values_end_to_end(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, make_table: MakeTable
) -> None:
    env = f"{schemas.env}_{HOSTILE}"
    physical = f"{schemas.physical}_{HOSTILE}"
    view = f'view "{HOSTILE}'
    make_table(physical, f"rel {HOSTILE}", 3)
    marker = ReleaseMarker(env=HOSTILE + "'o'brien", release_id=3, git_sha="'; --", switched_at="t")

    warehouse.switch(env, {view: f"rel {HOSTILE}"}, physical_schema=physical, marker=marker)

    assert warehouse.read_marker(env) == marker
    assert warehouse.view_targets(env) == {view: f"rel {HOSTILE}"}
    assert warehouse.relations(env) == {view, MARKER_VIEW}
    assert _served(sql, env, view) == 3
    warehouse.drop_relations(env, [view])
    assert warehouse.relations(env) == {MARKER_VIEW}
