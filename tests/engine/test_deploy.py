"""deploy and plan through `releasekit.api`: real git repositories, real dbt, real DuckDB.

Each test reads the warehouse on its own DuckDB connection after the API call returns
and closes it before the next call. What dbt actually ran is taken from the deploy's
`on_node` callback, so "built" means "dbt executed it", not "the plan said so".
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from releasekit import api
from releasekit.api import DeployResult, Workspace
from releasekit.errors import DirtyWorktreeError
from releasekit.reporting.terminal import TerminalReporter
from tests.support.deploy import Ran, deploy, names
from tests.support.projects import BASE_FILES, branch_here, commit, make_repo, write_files
from tests.support.warehouse_reads import marker, physical, relations, sql, views

pytestmark = pytest.mark.integration

ALL = {"raw_orders", "stg_orders", "stg_customers", "customers", "orders", "revenue", "big_spenders"}
VAR_READERS = {"orders", "revenue", "big_spenders"}  # orders reads min_amount; the rest descend from it
FIRST = ("new: first release of this environment",)


# --- reading the warehouse and the ledger --------------------------------------------------


# --- a deployed shop shared by read-only tests ---------------------------------------------


@dataclass(frozen=True)
class Shop:
    repo: Path
    workspace: Workspace
    sha: str
    dev: DeployResult
    dev_ran: Ran
    prod: DeployResult
    prod_ran: Ran
    dev_views: dict[str, str]
    prod_views: dict[str, str]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """dev deployed, then prod (which sets min_amount: 1) deployed from the same commit."""
    repo = make_repo(tmp_path_factory.mktemp("shop") / "repo")
    workspace = Workspace.open(repo)
    dev, dev_ran = deploy(workspace, "dev")
    dev_views = views(repo, "dev")
    branch_here(repo, "prod")
    prod, prod_ran = deploy(workspace, "prod")
    sha = workspace.repo.head_sha()
    return Shop(repo, workspace, sha, dev, dev_ran, prod, prod_ran, dev_views, views(repo, "prod"))


def test_first_deploy_builds_every_model_and_seed_and_records_release_1(shop: Shop) -> None:
    result = shop.dev
    assert (result.outcome, result.release_id, result.ok) == ("succeeded", 1, True)
    assert {step.name for step in result.plan.builds} == ALL
    assert result.plan.reuses == ()
    assert all(step.reasons == FIRST for step in result.plan.builds)
    assert shop.dev_ran.built == ALL
    assert all(status == "success" or status == "pass" for _, status in shop.dev_ran.nodes)

    entry = api.releases(shop.workspace, "dev")[-1]
    assert (entry.release_id, entry.kind, entry.outcome, entry.git_sha) == (
        1,
        "deploy",
        "succeeded",
        shop.sha,
    )
    assert names(entry.built) == ALL
    assert entry.reused == ()
    assert entry.previous_release is None


def test_first_deploy_switches_views_onto_physical_relations(shop: Shop) -> None:
    planned = shop.dev.plan.views
    assert shop.dev_views == planned
    assert set(planned) == ALL
    assert set(planned.values()) <= physical(shop.repo)
    for name, relation in planned.items():
        assert relation.startswith(f"{name}__")


def test_consumers_select_from_dev_views(shop: Shop) -> None:
    # dev keeps the project default min_amount: 10, so order 2 (amount 5) is filtered out.
    assert sql(shop.repo, "select * from dev.orders order by id") == [
        (1, 1, "ann", 2000),
        (3, 2, "bob", 4000),
    ]
    assert sql(shop.repo, "select * from dev.revenue order by 1") == [(1, 2000), (2, 4000)]
    assert sql(shop.repo, "select count(*) from dev.raw_orders") == [(3,)]


def test_marker_names_release_1_and_the_head_sha(shop: Shop) -> None:
    assert marker(shop.repo, "dev") == (1, "dev", shop.sha)


def test_second_deploy_with_nothing_changed_is_a_noop(shop: Shop) -> None:
    entries_before = len(api.releases(shop.workspace, "dev"))
    relations_before = relations(shop.repo)

    result, ran = deploy(shop.workspace, "dev")

    assert (result.outcome, result.release_id, result.ok) == ("noop", None, True)
    assert result.plan.builds == ()
    assert {step.name for step in result.plan.reuses} == ALL
    assert ran.nodes == []
    assert len(api.releases(shop.workspace, "dev")) == entries_before
    assert relations(shop.repo) == relations_before
    assert marker(shop.repo, "dev") == (1, "dev", shop.sha)


def test_plan_changes_nothing(shop: Shop) -> None:
    ledgers_before = {env: api.releases(shop.workspace, env) for env in ("dev", "prod")}
    relations_before = relations(shop.repo)

    plans = {env: api.plan(shop.workspace, env) for env in ("dev", "prod")}

    assert all(plan.builds == () and plan.is_noop for plan in plans.values())
    assert {env: api.releases(shop.workspace, env) for env in ("dev", "prod")} == ledgers_before
    assert relations(shop.repo) == relations_before


def test_prod_reuses_dev_relations_whose_fingerprints_are_equal(shop: Shop) -> None:
    plan = shop.prod.plan
    assert shop.prod.outcome == "succeeded"
    assert {step.name for step in plan.reuses} == ALL - VAR_READERS
    assert {step.name: step.reasons for step in plan.builds} == {
        "orders": ("var min_amount differs from dev",),
        "revenue": ("parent orders differs from dev",),
        "big_spenders": ("parent revenue differs from dev",),
    }
    # dbt ran only the var readers for prod: dev's tested tables were not rebuilt.
    assert shop.prod_ran.built == VAR_READERS

    entry = api.releases(shop.workspace, "prod")[-1]
    assert (entry.release_id, entry.outcome, dict(entry.params)) == (1, "succeeded", {"min_amount": 1})
    assert names(entry.built) == VAR_READERS
    assert names(entry.reused) == ALL - VAR_READERS


def test_prod_and_dev_views_share_reused_relations_only(shop: Shop) -> None:
    dev, prod = shop.dev_views, shop.prod_views
    assert set(prod) == ALL
    for name in ALL - VAR_READERS:
        assert prod[name] == dev[name], name
    for name in VAR_READERS:
        assert prod[name] != dev[name], name
    assert prod["customers"] == dev["customers"]
    assert prod["orders"] != dev["orders"]
    # 7 versions for dev, 3 more for prod's parameters.
    assert len(physical(shop.repo)) == len(ALL) + len(VAR_READERS)
    # prod's min_amount: 1 lets order 2 (amount 5) through; dev still filters it.
    assert [row[0] for row in sql(shop.repo, "select id from prod.orders order by id")] == [1, 2, 3]
    assert [row[0] for row in sql(shop.repo, "select id from dev.orders order by id")] == [1, 3]
    assert marker(shop.repo, "prod") == (1, "prod", shop.sha)


# --- deploys that change the shop ----------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_changing_a_mid_dag_model_builds_it_and_its_descendants_only(repo: Path) -> None:
    workspace = Workspace.open(repo)
    first, _ = deploy(workspace, "dev")
    before = views(repo, "dev")
    write_files(
        repo, {"models/customers.sql": BASE_FILES["models/customers.sql"] + "where customer_id > 0\n"}
    )
    commit(repo, "customers: keep real customers")

    relations_before = relations(repo)
    plan = api.plan(workspace, "dev")
    assert relations(repo) == relations_before
    assert len(api.releases(workspace, "dev")) == 2  # switching + succeeded of release 1

    changed = {"customers", "orders", "revenue", "big_spenders"}
    assert {step.name: step.reasons for step in plan.builds} == {
        "customers": ("SQL changed",),
        "orders": ("parent customers changed",),
        "revenue": ("parent orders changed",),
        "big_spenders": ("parent revenue changed",),
    }
    assert {step.name for step in plan.reuses} == ALL - changed
    assert set(plan.views_switched) == changed
    assert plan.views_added == plan.views_dropped == ()

    result, ran = deploy(workspace, "dev")
    assert (result.outcome, result.release_id) == ("succeeded", 2)
    assert ran.built == changed
    after = views(repo, "dev")
    assert {name for name in ALL if after[name] == before[name]} == ALL - changed
    assert after == result.plan.views == plan.views
    assert before == first.plan.views

    entry = api.releases(workspace, "dev")[-1]
    assert (entry.release_id, entry.outcome, entry.previous_release) == (2, "succeeded", 1)
    assert names(entry.built) == changed
    assert names(entry.reused) == ALL - changed
    assert marker(repo, "dev") == (2, "dev", workspace.repo.head_sha())


DUPLICATES = {
    "models/order_lines.sql": "select id from {{ ref('stg_orders') }} union all select 1\n",
    "models/order_lines.yml": (
        "version: 2\nmodels:\n  - name: order_lines\n    columns:\n      - name: id\n"
        "        data_tests: [unique]\n"
    ),
}
WARN_ONLY = DUPLICATES["models/order_lines.yml"].replace(
    "[unique]", "\n          - unique:\n              config: {severity: warn}"
)


def test_failing_data_test_keeps_the_previous_release_and_drops_what_it_built(
    repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    workspace = Workspace.open(repo)
    deploy(workspace, "dev")
    sha_1 = workspace.repo.head_sha()
    views_1 = views(repo, "dev")
    physical_1 = physical(repo)
    write_files(repo, DUPLICATES)
    commit(repo, "order_lines with a duplicate id")
    capfd.readouterr()

    result, ran = deploy(workspace, "dev")

    assert capfd.readouterr().out == ""  # the API never prints; dbt used to print its failures

    assert (result.outcome, result.ok, result.release_id) == ("failed", False, 2)
    [failure] = [f for f in result.failures if f.resource_type == "test"]
    assert failure.unique_id.startswith("test.shop.unique_order_lines_id")
    assert failure.status == "fail"
    assert ran.built == {"order_lines"}  # dbt did build it, then its test failed
    # The environment stayed on release 1.
    assert marker(repo, "dev") == (1, "dev", sha_1)
    assert views(repo, "dev") == views_1
    # The ledger says why.
    entry = api.releases(workspace, "dev")[-1]
    assert (entry.release_id, entry.kind, entry.outcome, entry.previous_release) == (2, "deploy", "failed", 1)
    assert any("unique_order_lines_id" in text for text in entry.failures)
    assert names(entry.built) == {"order_lines"}
    # What the failed attempt built is gone.
    [attempt] = [step.relation for step in result.plan.builds]
    assert physical(repo) == physical_1
    assert attempt not in physical(repo)

    # Relaxing the test does not change the model's fingerprint, so the same physical name
    # comes back: it must be built (and tested) again, never picked up from the failed run.
    write_files(repo, {"models/order_lines.yml": WARN_ONLY})
    commit(repo, "order_lines: the duplicate is known, warn only")
    fixed, ran = deploy(workspace, "dev")
    assert (fixed.outcome, fixed.release_id) == ("succeeded", 3)
    [step] = fixed.plan.builds
    assert (step.name, step.relation, step.reasons) == ("order_lines", attempt, ("new model",))
    assert ran.built == {"order_lines"}
    assert views(repo, "dev")["order_lines"] == attempt
    assert sql(repo, "select count(*) from dev.order_lines") == [(4,)]


def test_failing_unit_test_fails_the_deploy(repo: Path) -> None:
    workspace = Workspace.open(repo)
    first, _ = deploy(workspace, "dev")
    physical_1 = physical(repo)
    revenue = BASE_FILES["models/revenue.sql"]
    write_files(repo, {"models/revenue.sql": revenue.replace("sum(amount_cents)", "sum(amount_cents) * 2")})
    commit(repo, "revenue: doubled by mistake")

    result, ran = deploy(workspace, "dev")

    assert (result.outcome, result.release_id) == ("failed", 2)
    by_id = {f.unique_id: f for f in result.failures}
    unit = by_id["unit_test.shop.revenue.revenue_sums_per_customer"]
    assert unit.status == "fail"
    assert "150" in unit.message and "300" in unit.message  # dbt's diff: expected vs actual
    assert "\x1b" not in unit.message  # plain text, no terminal colours, in results and ledger
    # dbt runs a model's unit tests before the model: revenue and its child never ran.
    assert {by_id["model.shop.revenue"].status, by_id["model.shop.big_spenders"].status} == {"skipped"}
    assert ran.built == {"revenue", "big_spenders"}  # as skipped nodes
    assert all(status == "skipped" for uid, status in ran.nodes if uid.startswith("model."))
    assert marker(repo, "dev")[0] == 1
    assert views(repo, "dev") == first.plan.views
    assert physical(repo) == physical_1
    entry = api.releases(workspace, "dev")[-1]
    assert entry.outcome == "failed"
    assert any(
        text.startswith("unit_test.shop.revenue.revenue_sums_per_customer: fail") for text in entry.failures
    )
    assert not any("\x1b" in text for text in entry.failures)

    # Fixing the model (back to release 1's SQL) brings back release 1's fingerprints:
    # a new release that builds nothing and reuses every tested relation.
    write_files(repo, {"models/revenue.sql": revenue})
    commit(repo, "revenue: revert")
    fixed, ran = deploy(workspace, "dev")
    assert (fixed.outcome, fixed.release_id) == ("succeeded", 3)
    assert fixed.plan.builds == ()
    assert ran.nodes == []
    assert views(repo, "dev") == first.plan.views


def test_uncommitted_changes_refuse_to_deploy_unless_allowed(repo: Path) -> None:
    workspace = Workspace.open(repo)
    sha = workspace.repo.head_sha()
    write_files(repo, {"models/orders.sql": BASE_FILES["models/orders.sql"] + "-- wip\n"})

    with pytest.raises(DirtyWorktreeError) as caught:
        api.deploy(workspace, "dev")
    assert "models/orders.sql" in str(caught.value)
    assert "--allow-dirty" in (caught.value.hint or "")
    assert api.releases(workspace, "dev") == []

    write_files(repo, {"models/new_model.sql": "select 1 as one\n"})  # untracked counts too
    with pytest.raises(DirtyWorktreeError, match=r"models/new_model\.sql"):
        api.deploy(workspace, "dev")

    result, _ = deploy(workspace, "dev", allow_dirty=True)
    assert (result.outcome, result.release_id) == ("succeeded", 1)
    assert api.releases(workspace, "dev")[-1].git_sha == f"{sha}-dirty"
    assert marker(repo, "dev") == (1, "dev", f"{sha}-dirty")
    assert sql(repo, "select * from dev.new_model") == [(1,)]


EVENTS = (
    "{{ config(materialized='incremental', unique_key='id') }}\n"
    "select id, amount, current_timestamp as loaded_at from {{ ref('stg_orders') }}\n"
    "{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}\n"
)


def test_incremental_model_is_reused_unchanged_and_rebuilt_in_full_when_changed(tmp_path: Path) -> None:
    """What we observe (the rule releasekit implements today):

    - an incremental model whose fingerprint is unchanged is reused as is: dbt does not
      run it at all (no incremental run in place), so it gains no new rows;
    - a changed one gets a new physical version, built in full (not incrementally from
      the old version), and the old version stays for rollback.
    """
    repo = make_repo(tmp_path / "repo", {"models/events.sql": EVENTS})
    workspace = Workspace.open(repo)
    first, _ = deploy(workspace, "dev")
    [step] = [s for s in first.plan.steps if s.name == "events"]
    assert step.stateful
    version_1 = views(repo, "dev")["events"]
    loaded_1 = sql(repo, "select count(*), min(loaded_at), max(loaded_at) from dev.events")

    write_files(
        repo, {"models/stg_customers.sql": BASE_FILES["models/stg_customers.sql"].replace("bob", "rob")}
    )
    commit(repo, "rename bob")
    unrelated, ran = deploy(workspace, "dev")
    assert unrelated.outcome == "succeeded"
    assert "events" in {s.name for s in unrelated.plan.reuses}
    assert "events" not in ran.built
    assert views(repo, "dev")["events"] == version_1
    assert sql(repo, "select count(*), min(loaded_at), max(loaded_at) from dev.events") == loaded_1

    write_files(repo, {"models/events.sql": EVENTS.replace("amount,", "amount, amount * 100 as cents,")})
    commit(repo, "events: add cents")
    changed, ran = deploy(workspace, "dev")
    [step] = changed.plan.builds
    assert (step.name, step.reasons, step.stateful) == ("events", ("SQL changed",), True)
    assert ran.built == {"events"}
    version_2 = views(repo, "dev")["events"]
    assert version_2 != version_1
    assert {version_1, version_2} <= physical(repo)
    # Built in full: every row is new (loaded after the first version's last row).
    [(count, oldest, _)] = sql(repo, "select count(*), min(loaded_at), max(loaded_at) from dev.events")
    assert count == 3
    assert oldest > loaded_1[0][2]
    assert sql(repo, "select id, cents from dev.events order by id") == [(1, 2000), (2, 500), (3, 4000)]


def test_after_deploy_returns_other_processes_can_open_the_warehouse(shop: Shop) -> None:
    # dbt-duckdb used to keep the file open (and locked) in this process after dbt returned.
    code = f"import duckdb; duckdb.connect({str(shop.repo / 'warehouse.duckdb')!r}).close()"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr


def test_a_new_failing_test_on_an_unchanged_model_fails_the_deploy(repo: Path) -> None:
    # Tests are not part of a fingerprint (a test change rebuilds nothing), but a reused
    # version whose tests changed is tested again before the switch.
    workspace = Workspace.open(repo)
    deploy(workspace, "dev")
    write_files(
        repo,
        {
            "models/customers.yml": (
                "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: name\n"
                "        data_tests:\n          - accepted_values:\n              arguments:\n"
                "                values: [ann]\n"
            )
        },
    )
    commit(repo, "customers: only ann is allowed (bob is not)")

    result, ran = deploy(workspace, "dev")

    assert result.outcome == "failed", f"{result.outcome}: dbt ran {ran.nodes}"


def test_a_new_passing_test_on_an_unchanged_model_is_run_and_nothing_is_built(repo: Path) -> None:
    workspace = Workspace.open(repo)
    deploy(workspace, "dev")
    write_files(
        repo,
        {
            "models/customers.yml": (
                "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: name\n"
                "        data_tests: [not_null]\n"
            )
        },
    )
    commit(repo, "customers: names are never null")

    plan = api.plan(workspace, "dev")
    assert [(s.name, s.reasons) for s in plan.retests] == [("customers", ("tests changed",))]
    assert plan.builds == ()
    header = Console(record=True, width=300)
    TerminalReporter(header).plan(plan)
    assert plan.live is not None and plan.live.git_sha != plan.git_sha
    first = header.export_text().splitlines()[0]  # the commit planned, and the one live, apart
    assert f"Plan for dev of commit {plan.git_sha[:7]}" in first
    assert f"live: release 1 of commit {plan.live.git_sha[:7]}" in first
    result, ran = deploy(workspace, "dev")

    assert result.outcome == "succeeded"
    assert any(uid.startswith("test.shop.not_null_customers_name") for uid, _ in ran.nodes)
    assert ran.built == set()
    console = Console(record=True, width=200)
    TerminalReporter(console).deploy(result)
    models = len(result.plan.steps)
    said = console.export_text()
    assert f"built 0, tested again 1, reused {models - 1}, {models} views" in said  # counts add up
    again, _ = deploy(workspace, "dev")
    assert again.outcome == "noop"
