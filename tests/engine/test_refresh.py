"""`releasekit refresh`: the live code on new data, written beside the live relations,
audited, published atomically; real git, real dbt, real DuckDB and PostgreSQL.

The project's sources live in a `raw` schema loaded outside dbt (tests/support/
refresh_project.py); each test changes them as a loader would and refreshes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from releasekit import api
from releasekit.errors import LockedError, NoLiveReleaseError, NotFoundError, RefreshError
from tests.support import warehouse_reads
from tests.support.projects import commit, git, write_files
from tests.support.refresh_bench import Bench, duckdb_bench, postgres_bench
from tests.support.refresh_project import insert, load_raw, refresh_repo

pytestmark = pytest.mark.integration


@pytest.fixture
def duck(tmp_path: Path) -> Bench:
    return duckdb_bench(tmp_path / "repo")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    if request.param == "duckdb":
        yield duckdb_bench(tmp_path / "repo")
        return
    with postgres_bench(tmp_path / "repo") as made:
        yield made


def _relations(result: api.RefreshResult) -> dict[str, str]:
    return {version.name: version.relation for version in result.plan.models.values()}


def _live(bench: Bench) -> dict[str, str]:
    entries = api.releases(bench.workspace(), "dev")
    live = [e for e in entries if e.outcome == "succeeded"][-1]
    return {version.name: version.relation for version in live.models.values()}


REVENUE_X2 = "select customer_id, 2 * sum(amount) as revenue from {{ ref('orders') }} group by 1\n"


# --- the value pipeline ------------------------------------------------------------------


def test_new_rows_are_published_and_only_what_reads_them_is_rewritten(bench: Bench) -> None:
    bench.deploy()
    before = _live(bench)
    insert(bench.execute, "orders", [(4, 2, 7)])
    insert(bench.execute, "events", [(3, "buy"), (4, "open")])

    result = bench.refresh()

    assert result.outcome == "published" and result.release_id == 2
    written = {step.name for step in result.plan.writes}
    assert written == {"orders", "revenue", "events"}  # customers and the seed's table are kept
    assert {step.name for step in result.plan.retests} == {"stg_orders"}  # a view: read live, tested
    after = _relations(result)
    assert {name for name in after if after[name] != before[name]} == written
    assert bench.rows("dev.orders") == [
        (1, 1, "ann", 20),
        (2, 1, "ann", 5),
        (3, 2, "bob", 40),
        (4, 2, "bob", 7),
    ]
    assert bench.rows("dev.revenue") == [(1, 25), (2, 47)]
    # The incremental model gained exactly the new rows, from a copy of its live relation.
    assert bench.rows("dev.events") == [(1, "open"), (2, "click"), (3, "buy"), (4, "open")]
    assert bench.rows(f"rk__physical.{before['events']}") == [(1, "open"), (2, "click")]  # never written
    entry = api.releases(bench.workspace(), "dev")[-1]
    assert (entry.kind, entry.outcome, entry.previous_release) == ("refresh", "succeeded", 1)
    assert entry.refresh["rows"] == {"model.shop.orders": 4, "model.shop.events": 4}
    assert entry.refresh["tests"]["failed"] == 0 and entry.refresh["tests"]["passed"] >= 4
    assert set(entry.refresh["rewritten"]) >= {"model.shop.orders", "model.shop.events"}

    recorded = len(api.releases(bench.workspace(), "dev"))
    again = bench.refresh()
    assert again.outcome == "noop" and again.release_id is None
    assert len(api.releases(bench.workspace(), "dev")) == recorded


def test_a_failing_data_test_holds_the_new_data_back_and_leaves_no_trace(bench: Bench) -> None:
    bench.deploy()
    served = bench.rows("dev.orders")
    insert(bench.execute, "orders", [(4, 2, None)])  # amount is not_null in the project's tests
    physical_before = bench.physical()

    held = bench.refresh()

    assert held.outcome == "held" and not held.ok
    tests_failed = [f.unique_id.split(".")[2] for f in held.failures if f.resource_type == "test"]
    assert tests_failed == ["not_null_orders_amount"]
    assert bench.rows("dev.orders") == served  # consumers still read yesterday's data
    assert bench.physical() == physical_before  # what it wrote was dropped
    entry = api.releases(bench.workspace(), "dev")[-1]
    assert (entry.kind, entry.outcome) == ("refresh", "failed") and entry.failures
    dev = next(s for s in api.status(bench.workspace()) if s.env == "dev")
    assert dev.live is not None and dev.live.release_id == 1

    bench.execute("update raw.orders set amount = 1 where amount is null")  # the loader fixes it
    fixed = bench.refresh()
    assert fixed.outcome == "published" and fixed.release_id == held.release_id + 1  # type: ignore[operator]
    assert (4, 2, "bob", 1) in bench.rows("dev.orders")


@pytest.mark.slow
def test_updates_and_deletes_are_noticed(duck: Bench) -> None:
    duck.deploy()
    duck.execute("update raw.customers set name = 'bea' where id = 2")
    renamed = duck.refresh()
    assert {s.name for s in renamed.plan.writes} == {"customers", "orders", "revenue"}
    assert tuple(s.name for s in renamed.plan.sources if s.changed) == ("raw.customers",)
    assert (3, 2, "bea", 40) in duck.rows("dev.orders")

    duck.execute("delete from raw.orders where id = 2")
    duck.execute("insert into raw.orders values (9, 1, 5)")  # as many rows as before
    swapped = duck.refresh()
    assert swapped.outcome == "published"
    assert [row[0] for row in duck.rows("dev.orders")] == [1, 3, 9]


@pytest.mark.slow
def test_rowcount_mode_reads_less_and_misses_an_update(duck: Bench) -> None:
    write_files(duck.repo, {"releasekit.yml": "version: 1\nrefresh:\n  data_versions: rowcount\n"})
    commit(duck.repo, "count rows only")
    duck.deploy()
    duck.execute("update raw.customers set name = 'bea' where id = 2")
    assert duck.refresh().outcome == "noop"  # the README says rowcount cannot see an update
    insert(duck.execute, "customers", [(3, "cy")])
    assert duck.refresh().outcome == "published"
    assert duck.rows("dev.customers") == [(1, "ann"), (2, "bea"), (3, "cy")]


@pytest.mark.slow
def test_a_logic_test_that_fails_on_the_new_data_holds_it_back(duck: Bench) -> None:
    duck.deploy()
    insert(duck.execute, "orders", [(4, 1, -500)])
    held = duck.refresh()
    assert held.outcome == "held"
    assert [f.unique_id for f in held.failures] == ["logic:no_negative_revenue"]
    assert duck.rows("dev.revenue") == [(1, 25), (2, 40)]


@pytest.mark.slow
def test_select_refreshes_the_named_models_and_what_reads_them(duck: Bench) -> None:
    duck.deploy()
    insert(duck.execute, "orders", [(4, 2, 7)])
    insert(duck.execute, "events", [(3, "buy")])
    planned = duck.refresh(select=["orders"], dry_run=True)
    assert planned.outcome == "planned"
    assert {s.name for s in planned.plan.writes} == {"orders", "revenue"}
    assert len(duck.rows("dev.orders")) == 3  # a dry run changes nothing
    assert len(api.releases(duck.workspace(), "dev")) == 2

    assert duck.refresh(select=["orders"]).outcome == "published"
    assert duck.rows("dev.events") == [(1, "open"), (2, "click")]  # not selected: still yesterday's
    assert {s.name for s in duck.refresh().plan.writes} == {"events"}


@pytest.mark.slow
def test_rollback_and_roll_forward_between_data_versions(duck: Bench) -> None:
    duck.deploy()
    insert(duck.execute, "orders", [(4, 2, 7)])
    assert duck.refresh().release_id == 2
    insert(duck.execute, "orders", [(5, 2, 8)])
    assert duck.refresh().release_id == 3

    api.rollback(duck.workspace(), "dev", to=2)
    assert [row[0] for row in duck.rows("dev.orders")] == [1, 2, 3, 4]
    api.rollback(duck.workspace(), "dev", to=3)
    assert [row[0] for row in duck.rows("dev.orders")] == [1, 2, 3, 4, 5]

    # A deploy of unchanged code keeps the data the environment serves.
    deployed = duck.deploy()
    assert not deployed.plan.builds and [row[0] for row in duck.rows("dev.orders")] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_a_refresh_of_a_rolled_back_environment_keeps_its_hold(duck: Bench) -> None:
    duck.deploy()
    write_files(
        duck.repo, {"models/revenue.sql": "select customer_id, 0 as revenue from {{ ref('orders') }}\n"}
    )
    commit(duck.repo, "revenue is broken")
    duck.deploy()
    api.rollback(duck.workspace(), "dev")
    insert(duck.execute, "orders", [(4, 2, 7)])

    refreshed = duck.refresh()

    assert refreshed.outcome == "published" and refreshed.plan.live.release_id == 1
    assert duck.rows("dev.revenue") == [(1, 25), (2, 47)]  # the rolled-back-to code, on the new data
    dev = next(s for s in api.status(duck.workspace()) if s.env == "dev")
    assert dev.hold is not None and (dev.hold.to_release, dev.hold.from_release) == (1, 2)
    synced = api.sync(duck.workspace(), "dev")  # main still holds the commit rolled back from
    assert synced.held and not synced.changed
    assert duck.rows("dev.revenue") == [(1, 25), (2, 47)]
    duck.deploy()  # a deploy ends the hold, as it ends one the rollback entry holds
    lifted = api.releases(duck.workspace(), "dev")[-1].hold
    assert (lifted["action"], lifted["held_release"]) == ("lift", 1)


@pytest.mark.slow
def test_gc_keeps_retained_data_versions_and_drops_the_rest(duck: Bench) -> None:
    duck.deploy()
    first = _live(duck)
    for n in range(4, 8):
        insert(duck.execute, "orders", [(n, 1, n)])
        assert duck.refresh().outcome == "published"
    live = _live(duck)
    api.gc(duck.workspace())
    left = duck.physical()
    assert live["orders"] in left
    assert first["orders"] not in left  # retention 3: release 1 (the deploy) is no rollback target now
    assert first["customers"] in left  # still served: never refreshed


def _dev_promoted_to_staging(duck: Bench) -> None:
    """staging (equal parameters) promoted from dev, prod from staging; dev deployed and
    promoted to staging."""
    staging = "version: 1\nschema: staging\nbranch: staging\npromotes_from: dev\n"
    prod = "version: 1\nschema: prod\nbranch: prod\npromotes_from: staging\n"
    write_files(duck.repo, {"environments/staging.yml": staging, "environments/prod.yml": prod})
    commit(duck.repo, "staging")
    duck.deploy()
    assert api.promote(duck.workspace(), "staging", push=False).deployed is not None


@pytest.mark.slow
def test_a_refresh_of_dev_promoted_with_equal_parameters_reuses_its_tables(duck: Bench) -> None:
    _dev_promoted_to_staging(duck)
    insert(duck.execute, "orders", [(4, 2, 7)])
    refreshed = duck.refresh()
    # The same code on the same data: staging's own refresh reuses what dev wrote and tested.
    staged = duck.refresh("staging")
    assert staged.outcome == "published" and not staged.plan.writes
    assert _relations(staged)["orders"] == _relations(refreshed)["orders"]
    assert duck.rows("staging.orders") == duck.rows("dev.orders")


@pytest.mark.slow
def test_a_promotion_serves_the_data_its_source_refreshed(duck: Bench) -> None:
    _dev_promoted_to_staging(duck)
    insert(duck.execute, "orders", [(4, 2, 7)])
    refreshed = duck.refresh()
    write_files(duck.repo, {"models/revenue.sql": REVENUE_X2})
    commit(duck.repo, "revenue doubled")
    changed = duck.deploy()
    assert [step.name for step in changed.plan.builds] == ["revenue"]  # on dev's refreshed orders
    promoted = api.promote(duck.workspace(), "staging", push=False)
    assert promoted.deployed is not None and not promoted.deployed.plan.builds
    assert (
        _relations(refreshed)["orders"]
        == {v.name: v.relation for v in promoted.deployed.plan.models.values()}["orders"]
    )
    assert duck.rows("staging.revenue") == [(1, 50), (2, 94)]


@pytest.mark.slow
def test_a_branch_environment_keeps_its_data_while_its_base_is_refreshed(duck: Bench) -> None:
    duck.deploy()
    git(duck.repo, "switch", "-q", "-c", "feature/x")
    api.env_up(duck.workspace(), "feature/x")
    insert(duck.execute, "orders", [(4, 2, 7)])
    assert duck.refresh("dev").outcome == "published"
    schema = next(s.record.schema for s in api.env_list(duck.workspace()) if s.record.branch == "feature/x")
    assert len(duck.rows(f"{schema}.orders")) == 3  # the branch still reads the data it started on
    with pytest.raises(RefreshError, match="branch environment"):
        duck.refresh("feature/x")

    # The branch changes revenue and deploys it: built on the data the branch holds.
    write_files(duck.repo, {"models/revenue.sql": REVENUE_X2})
    commit(duck.repo, "revenue doubled")
    assert api.deploy(duck.workspace(), "feature/x").ok
    assert duck.rows(f"{schema}.revenue") == [(1, 50), (2, 80)]

    rebased = api.env_up(duck.workspace(), "feature/x", rebase=True)
    assert rebased.rebased and rebased.record.base_release == 2
    assert len(duck.rows(f"{schema}.orders")) == 4  # dev's refreshed data, dev's code
    assert duck.rows(f"{schema}.revenue") == [(1, 25), (2, 47)]
    # Deployed again, the branch's revenue is built on the new data, not reused from before.
    again = api.deploy(duck.workspace(), "feature/x")
    assert [step.name for step in again.plan.builds] == ["revenue"]
    assert duck.rows(f"{schema}.revenue") == [(1, 50), (2, 94)]
    assert not api.env_up(duck.workspace(), "feature/x").created


# --- bad input ---------------------------------------------------------------------------


def test_refusals_change_nothing(duck: Bench) -> None:
    with pytest.raises(NoLiveReleaseError, match="no live release to refresh"):
        duck.refresh()
    duck.deploy()
    with pytest.raises(NotFoundError, match="--select names no model"):
        duck.refresh(select=["ordres"])
    with duck.workspace().store.lock("dev", owner="someone else"), pytest.raises(LockedError):
        duck.refresh()
    duck.execute("alter table raw.customers rename to customers_old")
    with pytest.raises(RefreshError, match=r"cannot read source raw\.customers"):
        duck.refresh()
    duck.execute("alter table raw.customers_old rename to customers")
    insert(duck.execute, "events", [(3, "buy")])
    duck.execute(f"drop table rk__physical.{_live(duck)['events']}")
    with pytest.raises(RefreshError, match=r"live relation of incremental model events .* is gone"):
        duck.refresh()
    assert [e.kind for e in api.releases(duck.workspace(), "dev")] == ["deploy", "deploy"]


def test_a_release_deployed_from_uncommitted_changes_cannot_be_refreshed(duck: Bench) -> None:
    write_files(duck.repo, {"models/revenue.sql": "select 1 as customer_id, 0 as revenue\n"})
    assert api.deploy(duck.workspace(), "dev", allow_dirty=True).ok
    with pytest.raises(RefreshError, match="uncommitted changes"):
        duck.refresh()


@pytest.mark.slow
def test_a_branch_check_diffs_against_the_data_the_branch_holds(duck: Bench) -> None:
    duck.deploy()
    git(duck.repo, "switch", "-q", "-c", "feature/y")
    api.env_up(duck.workspace(), "feature/y")  # on dev release 1
    write_files(duck.repo, {"models/revenue.sql": REVENUE_X2})
    commit(duck.repo, "revenue doubled")
    insert(duck.execute, "customers", [(3, "cy")])
    insert(duck.execute, "orders", [(4, 3, 9)])  # a third customer: dev's revenue gains a row
    assert duck.refresh("dev").outcome == "published"
    report = api.check(duck.workspace(), "feature/y", only=("build", "diff"))
    [revenue] = [impact for impact in report.impacts if impact.model == "revenue"]
    # Compared with dev release 1, the data the branch holds: the doubling, not the new customer.
    assert (revenue.rows_before, revenue.rows_after) == (2, 2)
    assert any("release 1, the data this branch environment holds" in note for note in report.notes)


CUSTOMERS_SNAPSHOT = """\
snapshots:
  - name: customers_history
    relation: source('raw', 'customers')
    config:
      unique_key: id
      strategy: check
      check_cols: all
"""


@pytest.mark.slow
def test_a_snapshot_records_changes_in_a_copy_and_keeps_its_history(tmp_path: Path) -> None:
    repo = refresh_repo(tmp_path / "repo", files={"snapshots/customers_history.yml": CUSTOMERS_SNAPSHOT})
    bench = Bench(repo, lambda statement: warehouse_reads.sql(repo, statement))
    load_raw(bench.execute)
    bench.deploy()
    live = _live(bench)["customers_history"]
    bench.execute("update raw.customers set name = 'bea' where id = 2")

    result = bench.refresh()

    assert result.outcome == "published"
    assert "customers_history" in {step.name for step in result.plan.writes}
    history = bench.rows("dev.customers_history", "id, dbt_valid_from")
    assert [(row[0], row[1]) for row in history] == [(1, "ann"), (2, "bob"), (2, "bea")]  # bob's row closed
    assert len(bench.rows(f"rk__physical.{live}")) == 2  # the live version was never written
