"""Impact and data diff of a branch against its base environment: real dbt parses and
builds on DuckDB, the engine's dev and branch environments, the real warehouse adapter."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.checks.changes import METADATA_REASON, ModelChange, detect_changes
from releasekit.checks.impact import DataDiff, breaking_findings, measure_impact
from releasekit.checks.report import ColumnChange, ModelImpact
from releasekit.config.model import Connection
from releasekit.engine.fingerprint import fingerprint_graph
from releasekit.graph import Exposure, Node, ProjectGraph
from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.registry import connect
from tests.support.projects import BASE_FILES, commit, git, make_repo, write_files

pytestmark = pytest.mark.integration

BRANCH = "feat/impact"
SCHEMA_YML = """\
version: 2
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique, not_null]
  - name: stg_customers
    description: One row per customer.
unit_tests:
  - name: revenue_sums_per_customer
    model: revenue
    given:
      - input: ref('orders')
        rows:
          - {id: 1, customer_id: 1, amount_cents: 100}
          - {id: 2, customer_id: 1, amount_cents: 50}
    expect:
      rows:
        - {customer_id: 1, revenue_cents: 150}
"""
EXPOSURES_YML = """\
version: 2
exposures:
  - name: orders_dashboard
    type: dashboard
    owner: {name: Ann Analyst, email: ann@example.com}
    depends_on: [ref('orders')]
  - name: crm_export
    type: application
    owner: {email: crm@example.com}
    depends_on: [ref('customer_names')]
"""
BASE = {
    "models/schema.yml": SCHEMA_YML,
    "models/exposures.yml": EXPOSURES_YML,
    "seeds/seeds.yml": (
        "version: 2\nseeds:\n  - name: raw_orders\n    config: {meta: {releasekit: {unique_key: id}}}\n"
    ),
    "models/customers.sql": (
        "{{ config(materialized='table', unique_key='customer_id') }}\n"
        "select * from {{ ref('stg_customers') }}\n"
    ),
    "models/customer_names.sql": "select customer_id, name from {{ ref('customers') }}\n",
    "models/order_facts.sql": "select * from {{ ref('orders') }}\n",
}
BRANCH_CHANGES = {
    # Values: id 2 gone, id 3 changed, id 4 new.
    "seeds/raw_orders.csv": "id,customer_id,amount\n1,1,20\n3,2,45\n4,2,30\n",
    # A dropped column that revenue, order_count and an exposure read the model of.
    "models/orders.sql": BASE_FILES["models/orders.sql"].replace("c.name, ", ""),
    # A new column.
    "models/customers.sql": BASE["models/customers.sql"].replace(
        "select *", "select *, upper(name) as shout"
    ),
    # customer_names is removed; the exposure that read it moves to customers.
    "models/exposures.yml": EXPOSURES_YML.replace("ref('customer_names')", "ref('customers')"),
    # Description and tags only.
    "models/schema.yml": SCHEMA_YML.replace(
        "description: One row per customer.",
        "description: Customers, one row each.\n    config: {tags: [pii]}",
    ),
    # A macro only big_spenders calls.
    "macros/money.sql": BASE_FILES["macros/money.sql"].replace("1000", "2500"),
    "models/order_count.sql": "select count(*) as orders from {{ ref('orders') }}\n",
}


@dataclass(frozen=True)
class Scenario:
    base: ProjectGraph
    branch: ProjectGraph
    changes: tuple[ModelChange, ...]
    diff: DataDiff
    connection: Connection
    branch_schema: str

    def change(self, name: str) -> ModelChange:
        return next(c for c in self.changes if c.name == name)

    def impact(self, name: str) -> ModelImpact:
        return next(i for i in self.diff.impacts if i.model == name)


def _graph(repo: Path, env: str) -> ProjectGraph:
    workspace = Workspace.open(repo)
    context = workspace.run_context(workspace.environment(env), builds=True)
    assert context.dbt is not None
    return context.dbt.parse().graph


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    repo = make_repo(tmp_path_factory.mktemp("impact") / "repo", BASE)
    assert api.deploy(Workspace.open(repo), "dev").ok
    base = _graph(repo, "dev")
    git(repo, "switch", "-q", "-c", BRANCH)
    up = api.env_up(Workspace.open(repo))
    write_files(repo, BRANCH_CHANGES)
    (repo / "models/customer_names.sql").unlink()
    commit(repo, "branch changes")
    assert api.deploy(Workspace.open(repo)).ok
    branch = _graph(repo, BRANCH)
    environ = Workspace.open(repo).environ
    changes = detect_changes(
        base, branch, fingerprint_graph(base, environ), fingerprint_graph(branch, environ)
    )
    workspace = Workspace.open(repo)
    connection = workspace.run_context(workspace.environment(BRANCH)).connection
    warehouse = connect(connection)
    try:
        diff = measure_impact(changes, warehouse, "dev", up.record.schema)
    finally:
        warehouse.close()
    return Scenario(base, branch, changes, diff, connection, up.record.schema)


@pytest.fixture
def warehouse(scenario: Scenario) -> Iterator[Warehouse]:
    opened = connect(scenario.connection)
    yield opened
    opened.close()


# --- the graph: what translate adds ----------------------------------------------------------


def test_unique_keys_follow_the_declared_rule(scenario: Scenario) -> None:
    keys = {node.name: node.unique_key for node in scenario.base.nodes.values()}
    assert keys["raw_orders"] == ("id",)  # meta.releasekit.unique_key
    assert keys["customers"] == ("customer_id",)  # dbt's unique_key config
    assert keys["orders"] == ("id",)  # unique + not_null tests
    assert keys["stg_orders"] == keys["big_spenders"] == ()


def test_exposures_are_read_from_the_manifest(scenario: Scenario) -> None:
    dashboard = scenario.base.exposures["exposure.shop.orders_dashboard"]
    assert (dashboard.type, dashboard.owner, dashboard.depends_on) == (
        "dashboard",
        "Ann Analyst",
        ("model.shop.orders",),
    )
    assert scenario.base.exposures["exposure.shop.crm_export"].owner == "crm@example.com"


def test_metadata_and_keys_leave_fingerprints_unchanged(scenario: Scenario) -> None:
    graph = scenario.base
    bare = dataclasses.replace(
        graph,
        exposures={},
        nodes={uid: dataclasses.replace(n, unique_key=(), metadata="") for uid, n in graph.nodes.items()},
    )
    assert fingerprint_graph(bare, {}) == fingerprint_graph(graph, {})


# --- detect_changes: pure graph comparison ---------------------------------------------------


def test_changes_are_told_apart_by_kind(scenario: Scenario) -> None:
    kinds = {change.name: change.kind for change in scenario.changes}
    assert kinds == {
        "raw_orders": "definition",
        "stg_customers": "metadata",
        "stg_orders": "upstream",
        "customers": "definition",
        "orders": "definition",
        "revenue": "upstream",
        "order_facts": "upstream",
        "big_spenders": "definition",
        "order_count": "new",
        "customer_names": "removed",
    }


def test_a_macro_change_reports_exactly_the_models_calling_it(scenario: Scenario) -> None:
    by_macro = {c.name for c in scenario.changes if any(r.startswith("macro ") for r in c.reasons)}
    assert by_macro == {"big_spenders"}
    assert scenario.change("big_spenders").reasons == ("macro threshold changed",)


def test_a_removed_model_is_not_broken_by_readers_removed_with_it() -> None:
    def node(name: str, *parents: str) -> Node:
        return Node(f"model.p.{name}", name, "model", "p", "view", f"select {name}", parents=parents)

    exposure = Exposure("exposure.p.app", "app", "application", depends_on=("model.p.b",))
    nodes = {n.unique_id: n for n in (node("a"), node("b", "model.p.a"), node("c"))}
    base = ProjectGraph("p", "duckdb", nodes, {}, exposures={exposure.unique_id: exposure})
    branch = ProjectGraph("p", "duckdb", {"model.p.c": nodes["model.p.c"]}, {})
    changes = detect_changes(base, branch, fingerprint_graph(base, {}), fingerprint_graph(branch, {}))
    assert [(c.name, c.kind, c.downstream, c.dependants) for c in changes] == [
        ("a", "removed", ("b",), ()),
        ("b", "removed", (), ("exposure:app",)),
    ]


def test_downstream_and_exposures_come_from_the_branch_graph(scenario: Scenario) -> None:
    customers = scenario.change("customers")
    assert customers.downstream == ("big_spenders", "order_count", "order_facts", "orders", "revenue")
    assert customers.exposures == ("crm_export", "orders_dashboard")
    assert customers.dependants == ("orders", "exposure:crm_export")


# --- measure_impact on the warehouse ---------------------------------------------------------


def test_a_dropped_column_that_others_read_is_breaking(scenario: Scenario) -> None:
    orders = scenario.impact("orders")
    assert orders.classification == "breaking"
    assert orders.columns == (ColumnChange("name", "removed", before="VARCHAR"),)
    assert orders.breaking_because == ("order_count", "order_facts", "revenue", "exposure:orders_dashboard")


def test_a_column_change_passed_on_by_select_star_is_reported(scenario: Scenario) -> None:
    facts = scenario.impact("order_facts")
    assert (facts.classification, facts.reasons) == ("non-breaking", ("parent orders changed",))
    assert facts.columns == (ColumnChange("name", "removed", before="VARCHAR"),)
    assert (facts.rows_before, facts.rows_after, facts.rows) == (None, None, None)


def test_a_new_column_is_non_breaking_and_equal_rows_diff_empty(scenario: Scenario) -> None:
    customers = scenario.impact("customers")
    assert customers.classification == "non-breaking"
    assert customers.columns == (ColumnChange("shout", "added", after="VARCHAR"),)
    assert (customers.rows_before, customers.rows_after) == (2, 2)
    assert customers.rows is not None and (customers.rows.added, customers.rows.changed) == (0, 0)


def test_changed_values_are_counted_on_the_unique_key(scenario: Scenario) -> None:
    seed = scenario.impact("raw_orders")
    assert (seed.classification, seed.reasons) == ("non-breaking", ("seed data changed",))
    assert (seed.rows_before, seed.rows_after) == (3, 3)
    assert seed.rows is not None
    assert (seed.rows.key, seed.rows.added, seed.rows.removed, seed.rows.changed) == (("id",), 1, 1, 1)
    assert seed.rows.examples == ("changed id=3", "added id=4", "removed id=2")
    orders = scenario.impact("orders").rows  # only the columns both sides share are compared
    assert orders is not None and (orders.added, orders.removed, orders.changed) == (1, 0, 1)


def test_a_removed_model_an_exposure_read_is_breaking(scenario: Scenario) -> None:
    removed = scenario.impact("customer_names")
    assert (removed.classification, removed.breaking_because) == ("breaking", ("exposure:crm_export",))
    assert (removed.rows_before, removed.rows_after, removed.columns) == (2, None, ())


def test_a_description_and_tag_change_is_metadata_only(scenario: Scenario) -> None:
    described = scenario.impact("stg_customers")
    assert (described.classification, described.reasons) == ("metadata-only", (METADATA_REASON,))
    assert (described.rows_before, described.rows_after, described.rows) == (None, None, None)


def test_new_models_count_rows_and_unchanged_columns_drop_upstream_models(scenario: Scenario) -> None:
    new = scenario.impact("order_count")
    assert (new.classification, new.rows_before, new.rows_after) == ("non-breaking", None, 1)
    assert {"stg_orders", "revenue"}.isdisjoint(i.model for i in scenario.diff.impacts)


def test_a_model_without_a_key_is_counted_and_noted(scenario: Scenario) -> None:
    spenders = scenario.impact("big_spenders")
    assert (spenders.rows_before, spenders.rows_after, spenders.rows) == (2, 1, None)
    assert [note for note in scenario.diff.notes if note.startswith("big_spenders:")] == [
        "big_spenders: no unique key, rows not diffed; declare one with "
        "`meta: {releasekit: {unique_key: <column>}}` to diff its rows"
    ]


def test_a_key_column_missing_on_one_side_is_noted(scenario: Scenario, warehouse: Warehouse) -> None:
    change = scenario.change("orders")
    assert change.after is not None
    keyed = dataclasses.replace(change, after=dataclasses.replace(change.after, unique_key=("name",)))
    diff = measure_impact([keyed], warehouse, "dev", scenario.branch_schema)
    assert diff.impacts[0].rows is None
    assert diff.notes == (f"orders: no key column name in {scenario.branch_schema}, rows not diffed",)


def test_ephemeral_models_are_reported_without_columns_or_rows(
    scenario: Scenario, warehouse: Warehouse
) -> None:
    change = scenario.change("customers")
    assert change.before is not None and change.after is not None
    ephemeral = dataclasses.replace(
        change,
        before=dataclasses.replace(change.before, materialized="ephemeral"),
        after=dataclasses.replace(change.after, materialized="ephemeral"),
    )
    diff = measure_impact([ephemeral], warehouse, "dev", scenario.branch_schema)
    (impact,) = diff.impacts
    assert (impact.classification, impact.columns, impact.rows_before, impact.rows) == (
        "non-breaking",
        (),
        None,
        None,
    )
    assert diff.notes == ()


def test_breaking_impacts_become_findings(scenario: Scenario) -> None:
    findings = breaking_findings(scenario.diff.impacts, severity="warn")
    assert [(f.check, f.code, f.severity, f.subject) for f in findings] == [
        ("diff", "breaking-change", "warn", "orders"),
        ("diff", "breaking-change", "warn", "customer_names"),
    ]
    assert findings[0].message == (
        "orders: column name removed, and order_count, order_facts, revenue, exposure:orders_dashboard "
        "read it: "
        "keep the column(s), or check each reader copes"
    )
    assert "exposure:crm_export read it in the base environment" in findings[1].message


def test_a_key_not_unique_on_a_side_is_noted(scenario: Scenario, warehouse: Warehouse) -> None:
    change = scenario.change("orders")
    assert change.after is not None
    keyed = dataclasses.replace(change, after=dataclasses.replace(change.after, unique_key=("customer_id",)))
    diff = measure_impact([keyed], warehouse, "dev", scenario.branch_schema)
    assert diff.impacts[0].rows is None and (diff.impacts[0].rows_before, diff.impacts[0].rows_after) == (
        2,
        3,
    )
    (note,) = diff.notes
    assert note.startswith(
        "orders: rows not diffed: cannot compare rows: the key (customer_id) is not unique"
    )
