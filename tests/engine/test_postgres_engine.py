"""The engine and branch environments on PostgreSQL, through dbt-postgres: real git, real
dbt, a real server, a fresh database per test (per module for the read-only shop).

What the DuckDB suites check (deploy, noop, change, reuse across environments, failed
tests, rollback, gc, branch environments), here on PostgreSQL, where views bind to the
objects they read and DROP refuses to drop a relation another one reads. And the atomic
switch under a real deploy: a reader on its own connection samples the marker and every
view of dev, in one REPEATABLE READ transaction or in one statement, while `api.deploy`
runs in this process.

Run with -s to see the reader's counts and latencies.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2.extensions
import pytest

from releasekit import api
from releasekit.api import DeployResult, Workspace
from releasekit.errors import ConfigError, NotFoundError, WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, ReleaseMarker, Statement
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.postgres import PostgresWarehouse
from releasekit.warehouse.registry import ADAPTERS
from releasekit.warehouse.registry import connect as open_warehouse
from tests.support.deploy import Ran, deploy, names
from tests.support.postgres import PHYSICAL, Pg, connect, fresh_database, postgres_profile
from tests.support.projects import BASE_FILES, ENV_FILES, branch_here, commit, git, make_repo, write_files

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ALL = {"raw_orders", "stg_orders", "stg_customers", "customers", "orders", "revenue", "big_spenders"}
VAR_READERS = {"orders", "revenue", "big_spenders"}  # orders reads min_amount; the rest descend from it
CUSTOMERS_AND_DOWN = {"customers", "orders", "revenue", "big_spenders"}
FIRST = ("new: first release of this environment",)
BRANCH = 'feat/$(touch${IFS}canary);"x"'


@dataclass(frozen=True)
class PgRepo:
    """A test repository whose dbt profile points at its own fresh database."""

    repo: Path
    database: str
    pg: Pg

    def workspace(self) -> Workspace:
        return Workspace.open(self.repo)


@contextlib.contextmanager
def pg_repo(root: Path, files: Mapping[str, str] | None = None) -> Iterator[PgRepo]:
    with fresh_database() as database:
        repo = make_repo(root, files, profile=postgres_profile(database))
        pg = Pg(database)
        try:
            yield PgRepo(repo, database, pg)
        finally:
            pg.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[PgRepo]:
    with pg_repo(tmp_path / "repo") as made:
        yield made


def change_customers(repo: Path) -> str:
    write_files(
        repo, {"models/customers.sql": BASE_FILES["models/customers.sql"] + "where customer_id > 0\n"}
    )
    return commit(repo, "customers: keep real customers")


def rename_customer(repo: Path, name: str) -> str:
    write_files(
        repo, {"models/stg_customers.sql": BASE_FILES["models/stg_customers.sql"].replace("bob", name)}
    )
    return commit(repo, f"customer 2 is {name}")


def view_oids(pg: Pg, schema: str) -> dict[str, int]:
    rows = pg.sql(
        "SELECT c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'v'",
        (schema,),
    )
    return {str(name): int(oid) for name, oid in rows}


# --- a deployed shop shared by read-only tests ---------------------------------------------


@dataclass(frozen=True)
class Shop:
    at: PgRepo
    sha: str
    dev: DeployResult
    dev_ran: Ran
    prod: DeployResult
    prod_ran: Ran
    dev_views: dict[str, str]
    prod_views: dict[str, str]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """dev deployed, then prod (which sets min_amount: 1) deployed from the same commit."""
    with pg_repo(tmp_path_factory.mktemp("pg_shop") / "repo") as at:
        workspace = at.workspace()
        dev, dev_ran = deploy(workspace, "dev")
        dev_views = at.pg.views("dev")
        branch_here(at.repo, "prod")
        prod, prod_ran = deploy(workspace, "prod")
        sha = workspace.repo.head_sha()
        yield Shop(at, sha, dev, dev_ran, prod, prod_ran, dev_views, at.pg.views("prod"))


def test_first_deploy_builds_everything_and_dev_views_read_rows(shop: Shop) -> None:
    result, pg = shop.dev, shop.at.pg
    assert (result.outcome, result.release_id, result.ok) == ("succeeded", 1, True), result.failures
    assert {step.name for step in result.plan.builds} == ALL
    assert all(step.reasons == FIRST for step in result.plan.builds)
    assert shop.dev_ran.built == ALL
    assert all(status in ("success", "pass") for _, status in shop.dev_ran.nodes)

    # dev holds only views onto rk__physical, plus the marker; the data lives in rk__physical.
    assert shop.dev_views == result.plan.views
    relations = pg.relations()
    assert set(relations["dev"]) == ALL | {MARKER_VIEW}
    assert all(what != "table" for what in relations["dev"].values())
    assert set(result.plan.views.values()) <= pg.physical()
    assert relations[PHYSICAL][shop.dev_views["orders"]] == "table"  # materialized='table'
    assert relations[PHYSICAL][shop.dev_views["raw_orders"]] == "table"  # a seed
    assert relations[PHYSICAL][shop.dev_views["revenue"]] != "table"  # a view model
    assert not relations.get("public")  # the profile's schema: releasekit placed everything

    assert pg.sql("SELECT * FROM dev.orders ORDER BY id") == [(1, 1, "ann", 2000), (3, 2, "bob", 4000)]
    assert pg.sql("SELECT * FROM dev.revenue ORDER BY 1") == [(1, 2000), (2, 4000)]
    assert pg.sql("SELECT count(*) FROM dev.raw_orders") == [(3,)]
    assert pg.marker("dev") == (1, "dev", shop.sha)
    pg.every_view_selects("dev")

    entry = api.releases(shop.at.workspace(), "dev")[-1]
    assert (entry.release_id, entry.kind, entry.outcome) == (1, "deploy", "succeeded")
    assert entry.git_sha == shop.sha
    assert names(entry.built) == ALL and entry.reused == ()


def test_second_deploy_with_nothing_changed_is_a_noop(shop: Shop) -> None:
    workspace, pg = shop.at.workspace(), shop.at.pg
    entries_before = len(api.releases(workspace, "dev"))
    relations_before, oids_before = pg.relations(), view_oids(pg, "dev")

    result, ran = deploy(workspace, "dev")

    assert (result.outcome, result.release_id) == ("noop", None)
    assert result.plan.builds == () and ran.nodes == []
    assert len(api.releases(workspace, "dev")) == entries_before
    assert pg.relations() == relations_before
    assert view_oids(pg, "dev") == oids_before  # not even replaced
    assert pg.marker("dev") == (1, "dev", shop.sha)


def test_prod_reuses_dev_relations_whose_fingerprints_are_equal(shop: Shop) -> None:
    plan, pg = shop.prod.plan, shop.at.pg
    assert shop.prod.outcome == "succeeded", shop.prod.failures
    assert {step.name for step in plan.reuses} == ALL - VAR_READERS
    assert {step.name: step.reasons for step in plan.builds} == {
        "orders": ("var min_amount differs from dev",),
        "revenue": ("parent orders differs from dev",),
        "big_spenders": ("parent revenue differs from dev",),
    }
    assert shop.prod_ran.built == VAR_READERS  # dev's tested tables were not rebuilt
    dev, prod = shop.dev_views, shop.prod_views
    assert {name for name in ALL if prod[name] == dev[name]} == ALL - VAR_READERS
    assert len(pg.physical()) == len(ALL) + len(VAR_READERS)
    assert [row[0] for row in pg.sql("SELECT id FROM prod.orders ORDER BY id")] == [1, 2, 3]
    assert [row[0] for row in pg.sql("SELECT id FROM dev.orders ORDER BY id")] == [1, 3]
    assert pg.marker("prod") == (1, "prod", shop.sha)
    entry = api.releases(shop.at.workspace(), "prod")[-1]
    assert (entry.outcome, dict(entry.params)) == ("succeeded", {"min_amount": 1})
    assert names(entry.reused) == ALL - VAR_READERS
    statuses = {status.env: status for status in api.status(shop.at.workspace())}
    assert {env: (s.marker.release_id if s.marker else None, s.drift) for env, s in statuses.items()} == {
        "dev": (1, False),
        "prod": (1, False),
    }


# --- deploys that change things --------------------------------------------------------------


def test_a_change_builds_the_model_and_its_descendants_only(fresh: PgRepo) -> None:
    workspace, pg = fresh.workspace(), fresh.pg
    deploy(workspace, "dev")
    before, oids_before = pg.views("dev"), view_oids(pg, "dev")
    change_customers(fresh.repo)

    plan = api.plan(workspace, "dev")
    assert {step.name: step.reasons for step in plan.builds} == {
        "customers": ("SQL changed",),
        "orders": ("parent customers changed",),
        "revenue": ("parent orders changed",),
        "big_spenders": ("parent revenue changed",),
    }
    result, ran = deploy(workspace, "dev")

    assert (result.outcome, result.release_id) == ("succeeded", 2), result.failures
    assert ran.built == CUSTOMERS_AND_DOWN
    after = pg.views("dev")
    assert after == result.plan.views == plan.views
    assert {name for name in ALL if after[name] == before[name]} == ALL - CUSTOMERS_AND_DOWN
    # Views whose relation did not change are the very same objects (not locked, not replaced).
    oids_after = view_oids(pg, "dev")
    unchanged = ALL - CUSTOMERS_AND_DOWN
    assert {n: oids_after[n] for n in unchanged} == {n: oids_before[n] for n in unchanged}
    assert all(oids_after[n] != oids_before[n] for n in CUSTOMERS_AND_DOWN)
    assert pg.marker("dev") == (2, "dev", workspace.repo.head_sha())
    assert not any(schema.endswith("__rk_next") for schema in pg.schemas())
    pg.every_view_selects("dev")


# A table model and a view model reading it, with a test on the view that fails: the
# failed attempt built both, and must drop the view before the table it reads.
FAILING = {
    "models/order_lines.sql": (
        "{{ config(materialized='table') }}\nselect id from {{ ref('stg_orders') }} union all select 1\n"
    ),
    "models/order_lines_v.sql": "select id from {{ ref('order_lines') }}\n",
    "models/order_lines.yml": (
        "version: 2\nmodels:\n  - name: order_lines_v\n    columns:\n      - name: id\n"
        "        data_tests: [unique]\n"
    ),
}
WARN_ONLY = FAILING["models/order_lines.yml"].replace(
    "[unique]", "\n          - unique:\n              config: {severity: warn}"
)


def test_a_failing_data_test_keeps_the_previous_release_and_drops_what_it_built(fresh: PgRepo) -> None:
    workspace, pg = fresh.workspace(), fresh.pg
    deploy(workspace, "dev")
    sha_1, views_1, physical_1 = workspace.repo.head_sha(), pg.views("dev"), pg.physical()
    write_files(fresh.repo, FAILING)
    commit(fresh.repo, "order_lines with a duplicate id")

    result, ran = deploy(workspace, "dev")

    assert (result.outcome, result.release_id) == ("failed", 2)
    [failure] = [f for f in result.failures if f.resource_type == "test"]
    assert failure.unique_id.startswith("test.shop.unique_order_lines_v_id") and failure.status == "fail"
    assert ran.built == {"order_lines", "order_lines_v"}  # both were built, then the test failed
    assert pg.marker("dev") == (1, "dev", sha_1)
    assert pg.views("dev") == views_1
    entry = api.releases(workspace, "dev")[-1]
    assert (entry.release_id, entry.outcome, entry.previous_release) == (2, "failed", 1)
    assert names(entry.built) == {"order_lines", "order_lines_v"}
    attempt = {step.relation for step in result.plan.builds}
    assert pg.physical() == physical_1  # the view and the table it reads, both gone

    # Relaxing the test changes no fingerprint: the same names are built and tested again.
    write_files(fresh.repo, {"models/order_lines.yml": WARN_ONLY})
    commit(fresh.repo, "order_lines: warn only")
    fixed, ran = deploy(workspace, "dev")
    assert (fixed.outcome, fixed.release_id) == ("succeeded", 3), fixed.failures
    assert {step.relation for step in fixed.plan.builds} == attempt
    assert ran.built == {"order_lines", "order_lines_v"}
    assert pg.sql("SELECT count(*) FROM dev.order_lines_v") == [(4,)]


def test_rollback_switches_back_and_builds_nothing(fresh: PgRepo) -> None:
    workspace, pg = fresh.workspace(), fresh.pg
    deploy(workspace, "dev")
    sha_1, views_1 = workspace.repo.head_sha(), pg.views("dev")
    sha_2 = rename_customer(fresh.repo, "rob")
    second, _ = deploy(workspace, "dev")
    assert second.outcome == "succeeded", second.failures
    views_2, physical_2 = pg.views("dev"), pg.physical()
    assert pg.sql("SELECT name FROM dev.customers ORDER BY 1") == [("ann",), ("rob",)]

    back = api.rollback(workspace, "dev")

    assert (back.from_release, back.to_release, back.git_sha) == (2, 1, sha_1)
    assert pg.views("dev") == views_1
    assert pg.marker("dev") == (1, "dev", sha_1)
    assert pg.sql("SELECT name FROM dev.customers ORDER BY 1") == [("ann",), ("bob",)]
    assert pg.physical() == physical_2  # nothing built, nothing dropped
    entry = api.releases(workspace, "dev")[-1]
    assert (entry.kind, entry.outcome, entry.release_id) == ("rollback", "succeeded", 1)

    forward = api.rollback(workspace, "dev", to=2)
    assert (forward.to_release, pg.views("dev"), pg.marker("dev")) == (2, views_2, (2, "dev", sha_2))
    pg.every_view_selects("dev")


def test_gc_drops_unretained_relations_and_never_what_live_views_read(tmp_path: Path) -> None:
    files = {"environments/dev.yml": ENV_FILES["environments/dev.yml"] + "retention: 1\n"}
    with pg_repo(tmp_path / "repo", files) as at:
        workspace, pg = at.workspace(), at.pg
        deploy(workspace, "dev")
        sha_1, views_1 = workspace.repo.head_sha(), pg.views("dev")
        change_customers(at.repo)
        deploy(workspace, "dev")
        views_2 = pg.views("dev")
        # customers and orders (tables), revenue (a view on orders), big_spenders (a view
        # on revenue): gc has to drop readers before what they read.
        only_1 = set(views_1.values()) - set(views_2.values())
        assert {relation.split("__")[0] for relation in only_1} == CUSTOMERS_AND_DOWN
        leftover = f"{views_2['orders']}__dbt_tmp"
        pg.sql(f"CREATE TABLE {qualify(PHYSICAL, leftover)} AS SELECT 1 AS id")

        # Live views that read release 1 (prod, switched by hand: the ledger knows nothing
        # of it) keep release 1's relations.
        marker = ReleaseMarker("prod", 1, sha_1, datetime.now(UTC).isoformat(timespec="seconds"))
        prod = workspace.run_context(workspace.environment("prod"))
        with contextlib.closing(open_warehouse(prod.connection)) as warehouse:
            warehouse.switch("prod", views_1, physical_schema=PHYSICAL, marker=marker)
        physical_before = pg.physical()
        [held] = api.gc(workspace)
        assert set(held.dropped) == {leftover}
        assert pg.physical() == physical_before - {leftover}
        pg.every_view_selects("prod")

        pg.sql("DROP SCHEMA prod CASCADE")
        # A user's view on an unused physical relation holds that one relation only; what
        # reads it among the unused (revenue, big_spenders) goes.
        [report_on] = [relation for relation in only_1 if relation.startswith("orders__")]
        pg.sql(f"CREATE VIEW public.user_report AS SELECT * FROM {qualify(PHYSICAL, report_on)}")
        [dry] = api.gc(workspace, dry_run=True)
        assert set(dry.dropped) == only_1 - {report_on} and pg.physical() == physical_before - {leftover}
        [held] = api.gc(workspace)
        assert set(held.dropped) == only_1 - {report_on}
        assert held.held == {report_on: ("view public.user_report",)}
        assert report_on in pg.physical()
        pg.sql("DROP VIEW public.user_report")
        [result] = api.gc(workspace)
        assert set(result.dropped) == {report_on}
        assert pg.physical() == set(views_2.values())
        pg.every_view_selects("dev")
        [again] = api.gc(workspace)
        assert again.dropped == ()


def test_a_consumer_view_on_an_environment_view_refuses_the_switch_until_dropped(fresh: PgRepo) -> None:
    """PostgreSQL binds views to objects: a consumer's view on dev.orders would go on
    reading the old release, so the switch refuses, names it, and changes nothing."""
    workspace, pg = fresh.workspace(), fresh.pg
    deploy(workspace, "dev")
    views_1 = pg.views("dev")
    pg.sql("CREATE VIEW public.order_report AS SELECT count(*) AS n FROM dev.orders")
    change_customers(fresh.repo)

    with pytest.raises(WarehouseError, match=r"order_report") as refused:
        deploy(workspace, "dev")
    assert "nothing changed" in (refused.value.hint or "")
    assert pg.views("dev") == views_1 and pg.marker("dev")[0] == 1

    pg.sql("DROP VIEW public.order_report")
    result, ran = deploy(workspace, "dev")
    # The refused release's relations were built and tested: nothing is built again.
    assert result.outcome == "succeeded" and ran.built == set()
    assert result.recovered is not None and result.recovered.outcome == "abandoned"
    assert pg.marker("dev")[0] == result.release_id == 3


def test_lock_timeout_from_releasekit_yml_bounds_how_long_a_reader_is_blocked(tmp_path: Path) -> None:
    """A reader holding dev's views in an open transaction: the switch gives way after
    releasekit.yml's lock timeout per attempt, and says so; nothing changes."""
    files = {"releasekit.yml": "version: 1\nwarehouse:\n  lock_timeout_ms: 40\n"}
    with pg_repo(tmp_path / "repo", files) as at:
        workspace = at.workspace()
        assert (
            workspace.run_context(workspace.environment("dev")).connection.settings["lock_timeout_ms"] == 40
        )
        deploy(workspace, "dev")
        views = at.pg.views("dev")
        change_customers(at.repo)
        reader = connect(at.database)
        reader.autocommit = False
        try:
            with reader.cursor() as cur:
                cur.execute("SELECT count(*) FROM dev.customers")  # holds its lock until rollback
            with pytest.raises(WarehouseBusyError, match=r"longer than lock_timeout \(40 ms\)") as busy:
                deploy(at.workspace(), "dev")
            assert "warehouse.lock_timeout_ms" in (busy.value.hint or "")
        finally:
            reader.rollback()
            reader.close()
        assert at.pg.views("dev") == views and at.pg.marker("dev")[0] == 1


def test_consumers_keep_their_grants_through_deploys_rollbacks_and_branch_environments(
    tmp_path: Path,
) -> None:
    role = f"rk_bi_{tmp_path.name[-20:].lower().replace('-', '_')}"
    files = {
        "releasekit.yml": f"version: 1\nbranch_environments:\n  grants: {{select: [{role}]}}\n",
        "environments/dev.yml": ENV_FILES["environments/dev.yml"] + f"grants:\n  select: [{role}]\n",
    }
    with pg_repo(tmp_path / "repo", files) as at:
        at.pg.sql(f"CREATE ROLE {role}")
        try:
            can = (
                "SELECT bool_and(has_table_privilege(%s, format('%%I.%%I', %s::text, v), 'SELECT')) "
                "FROM unnest(%s) v"
            )

            def readable(schema: str) -> bool:
                return bool(at.pg.sql(can, (role, schema, sorted(at.pg.views(schema))))[0][0])

            deploy(at.workspace(), "dev")
            assert readable("dev")
            change_customers(at.repo)
            deploy(at.workspace(), "dev")  # replaces customers and what reads it
            assert readable("dev")
            api.rollback(at.workspace(), "dev")
            assert readable("dev")
            up = api.env_up(at.workspace(), "feature")
            assert readable(up.record.schema)
            # The role reads through the views only: the physical tables stay closed to it.
            assert not at.pg.sql("SELECT has_schema_privilege(%s, %s, 'USAGE')", (role, PHYSICAL))[0][0]
            api.env_down(at.workspace(), "feature")
        finally:
            at.pg.sql(f"DROP OWNED BY {role}; DROP ROLE {role}")


# --- branch environments -------------------------------------------------------------------


REVENUE_EDIT = {
    "models/revenue.sql": BASE_FILES["models/revenue.sql"].replace(
        "sum(amount_cents)", "sum(amount_cents * 1)"
    )
}


def test_a_branch_environment_comes_up_deploys_only_its_change_and_goes_down(fresh: PgRepo) -> None:
    repo, pg = fresh.repo, fresh.pg
    deploy(fresh.workspace(), "dev")
    git(repo, "switch", "-q", "-c", BRANCH)
    dev_views, dev_marker, physical_1 = pg.views("dev"), pg.marker("dev"), pg.physical()

    up = api.env_up(fresh.workspace())

    schema = up.record.schema
    assert up.created and (up.record.branch, up.record.base, up.record.base_release) == (BRANCH, "dev", 1)
    assert pg.views(schema) == dev_views
    assert pg.physical() == physical_1  # nothing built, no data copied
    assert pg.marker(schema) == (up.release_id, BRANCH, dev_marker[2])
    assert pg.sql(f"SELECT * FROM {qualify(schema, 'orders')} ORDER BY id") == pg.sql(
        "SELECT * FROM dev.orders ORDER BY id"
    )
    assert not (repo / "canary").exists()
    again = api.env_up(fresh.workspace())
    assert not again.created and again.record == up.record
    assert [s.record.branch for s in api.env_list(fresh.workspace())] == [BRANCH]

    write_files(repo, REVENUE_EDIT)
    commit(repo, "revenue: explicit arithmetic")
    result, ran = deploy(fresh.workspace())  # no name: the current branch's environment
    assert (result.plan.env, result.outcome) == (BRANCH, "succeeded"), result.failures
    assert {step.name for step in result.plan.builds} == ran.built == {"revenue", "big_spenders"}
    branch_built = {step.relation for step in result.plan.builds}
    assert pg.views("dev") == dev_views and pg.marker("dev") == dev_marker
    branch_views = pg.views(schema)
    assert {n for n in ALL if branch_views[n] != dev_views[n]} == {"revenue", "big_spenders"}
    pg.every_view_selects(schema)

    down = api.env_down(fresh.workspace(), BRANCH)

    assert down.schema_dropped and schema not in pg.schemas()
    assert not any("rk_next" in name for name in pg.schemas())
    assert api.env_list(fresh.workspace()) == []
    assert pg.views("dev") == dev_views and pg.marker("dev") == dev_marker
    [collected] = api.gc(fresh.workspace())
    assert set(collected.dropped) == branch_built
    assert pg.physical() == physical_1
    pg.every_view_selects("dev")


def test_declared_environments_are_never_brought_up_or_dropped_as_branches(fresh: PgRepo) -> None:
    workspace, pg = fresh.workspace(), fresh.pg
    schemas = pg.schemas()
    for name in ("dev", "main", "prod"):
        with pytest.raises(ConfigError, match="declared environment"):
            api.env_down(workspace, name)
        with pytest.raises(ConfigError, match="declared environment"):
            api.env_up(workspace, name)
    with pytest.raises(NotFoundError, match="no branch environment"):
        api.env_down(workspace, "never-made")
    with pytest.raises(NotFoundError, match="no live release"):
        api.env_up(workspace, "feature")  # dev was never deployed
    assert pg.schemas() == schemas and api.env_list(workspace) == []


def test_env_down_refuses_while_a_consumer_view_reads_the_branch_schema(fresh: PgRepo) -> None:
    deploy(fresh.workspace(), "dev")
    up = api.env_up(fresh.workspace(), "feature")
    report = f"CREATE VIEW public.report AS SELECT * FROM {qualify(up.record.schema, 'revenue')}"
    fresh.pg.sql(report)
    with pytest.raises(WarehouseError, match=r"public\.report"):
        api.env_down(fresh.workspace(), "feature")
    assert up.record.schema in fresh.pg.schemas()  # CASCADE would have dropped the report
    # Still up, as far as releasekit knows too: listed, live in the ledger, kept by gc.
    assert [s.record.branch for s in api.env_list(fresh.workspace())] == ["feature"]
    assert api.releases(fresh.workspace(), "feature")[-1].kind == "deploy"
    api.gc(fresh.workspace())
    fresh.pg.every_view_selects(up.record.schema)
    fresh.pg.sql("DROP VIEW public.report")
    assert api.env_down(fresh.workspace(), "feature").schema_dropped
    assert up.record.schema not in fresh.pg.schemas() and api.env_list(fresh.workspace()) == []


def test_env_gc_drops_gone_and_expired_branches_and_keeps_pinned_ones(fresh: PgRepo) -> None:
    repo, pg = fresh.repo, fresh.pg
    deploy(fresh.workspace(), "dev")
    git(repo, "switch", "-q", "-c", BRANCH)
    workspace = fresh.workspace()
    made = {BRANCH: api.env_up(workspace).record.schema}
    for name in ("old", "kept"):
        git(repo, "branch", name)
        made[name] = api.env_up(workspace, name, pin=name == "kept").record.schema
    assert set(made.values()) <= pg.schemas()
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-D", BRANCH)
    later = datetime.now(UTC) + timedelta(days=30)

    dry = api.env_gc(workspace, dry_run=True, now=later)
    assert {s.record.branch for s in dry} == {BRANCH, "old"}
    assert set(made.values()) <= pg.schemas()
    api.env_gc(workspace, now=later)

    assert [s.record.branch for s in api.env_list(workspace)] == ["kept"]
    assert made["kept"] in pg.schemas()
    assert not {made[BRANCH], made["old"]} & pg.schemas()
    assert pg.views(made["kept"]) == pg.views("dev")


# --- the atomic switch under a real deploy -------------------------------------------------

# Every rebuilt model's rows change (names, an `edition` column), so each view's rows say
# which release it serves.
SWITCH_EDITS = {
    "models/stg_customers.sql": "select 1 as customer_id, 'ann2' as name union all select 2, 'bob2'\n",
    "models/revenue.sql": (
        "select customer_id, sum(amount_cents) as revenue_cents, 2 as edition\n"
        "from {{ ref('orders') }} group by 1\n"
    ),
    "models/big_spenders.sql": (
        "select customer_id, 2 as edition from {{ ref('revenue') }} where revenue_cents > {{ threshold() }}\n"
    ),
}
REBUILT = {"stg_customers", "customers", "orders", "revenue", "big_spenders"}
VIEW_ORDER = sorted(ALL)
STAGING_PAUSE = 0.25  # seconds the switch transaction stays open before it touches live views


def _rows_digest(relation: str) -> str:
    return f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {relation} AS t"


_ONE_STATEMENT = (
    "SELECT (SELECT release_id FROM "
    + qualify("dev", MARKER_VIEW)
    + "), "
    + ", ".join(f"({_rows_digest(qualify('dev', view))})" for view in VIEW_ORDER)
)


@dataclass(frozen=True)
class Sample:
    mode: str  # "transaction" (REPEATABLE READ, one statement per view) or "statement"
    start: float
    end: float
    marker: int
    digests: tuple[str, ...]  # per view, in VIEW_ORDER

    @property
    def latency(self) -> float:
        return self.end - self.start


def _read_once(con: Any, mode: str) -> Sample:
    start = time.monotonic()
    with con.cursor() as cur:
        if mode == "statement":
            cur.execute(_ONE_STATEMENT)
            marker, *digests = cur.fetchone()
        else:
            cur.execute(f"SELECT release_id FROM {qualify('dev', MARKER_VIEW)}")
            [(marker,)] = cur.fetchall()
            digests = []
            for view in VIEW_ORDER:
                cur.execute(_rows_digest(qualify("dev", view)))
                digests.append(cur.fetchone()[0])
    con.commit()
    return Sample(mode, start, time.monotonic(), int(marker), tuple(digests))


def _read_loop(
    database: str, samples: list[Sample], errors: list[BaseException], done: threading.Event
) -> None:
    """Sample the marker and every view's rows, alternating the two modes, until shortly
    after the deploy returns."""
    con = connect(database)
    try:
        con.autocommit = False
        con.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        after = 0
        while after < 50:
            if done.is_set():
                after += 1
            samples.append(_read_once(con, ("transaction", "statement")[len(samples) % 2]))
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        con.close()


def test_a_reader_never_sees_a_mix_while_a_real_deploy_switches(
    fresh: PgRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, pg = fresh.workspace(), fresh.pg
    first, _ = deploy(workspace, "dev")
    write_files(fresh.repo, SWITCH_EDITS)
    commit(fresh.repo, "new names and editions")

    # Time the switch, and hold its transaction open (views staged, live ones not yet
    # touched) so that readers sample it mid-way too.
    window: list[float] = []
    real_switch = PostgresWarehouse.switch

    def timed_switch(self: PostgresWarehouse, *args: Any, **kwargs: Any) -> None:
        window.append(time.monotonic())
        try:
            real_switch(self, *args, **kwargs)
        finally:
            window.append(time.monotonic())

    def pause_before_the_swap(statement: Statement) -> None:
        if statement.subject == "swap":  # the views are staged, the live ones not yet touched
            time.sleep(STAGING_PAUSE)

    monkeypatch.setattr(PostgresWarehouse, "switch", timed_switch)
    monkeypatch.setitem(
        ADAPTERS, "postgres", functools.partial(PostgresWarehouse, on_statement=pause_before_the_swap)
    )
    samples: list[Sample] = []
    errors: list[BaseException] = []
    done = threading.Event()
    reader = threading.Thread(target=_read_loop, args=(fresh.database, samples, errors, done), daemon=True)
    reader.start()
    try:
        while not samples and not errors and reader.is_alive():
            time.sleep(0.01)
        result, ran = deploy(workspace, "dev")
    finally:
        done.set()
        reader.join(timeout=60)
    assert not reader.is_alive()
    assert not errors, f"the reader failed: {errors[0]!r}"
    assert (result.outcome, result.release_id) == ("succeeded", 2), result.failures
    assert ran.built == REBUILT
    monkeypatch.undo()

    # What each recorded release serves, read from its physical relations afterwards.
    releases = {
        e.release_id: {v.name: v.relation for v in e.models.values()}
        for e in api.releases(workspace, "dev")
        if e.outcome == "succeeded"
    }
    assert set(releases) == {1, 2}
    expected = {
        release_id: tuple(pg.sql(_rows_digest(qualify(PHYSICAL, views[v])))[0][0] for v in VIEW_ORDER)
        for release_id, views in releases.items()
    }
    changed = [i for i, view in enumerate(VIEW_ORDER) if view in REBUILT]
    assert all(expected[1][i] != expected[2][i] for i in changed), "the rows do not tell releases apart"

    def matches(sample: Sample) -> list[int]:
        return [r for r, digests in expected.items() if sample.marker == r and sample.digests == digests]

    mixed = [s for s in samples if len(matches(s)) != 1]
    by_release = Counter("mixed" if s in mixed else f"release {s.marker}" for s in samples)
    order = [s.marker for s in samples if s not in mixed]
    first_new = order.index(2) if 2 in order else len(order)
    start, end = window[0], window[-1]
    during = [s for s in samples if s.start <= end and s.end >= start]
    latencies = [s.latency for s in samples]
    by_mode = Counter(s.mode for s in samples)
    print(
        f"\nreader samples: {len(samples)} ({dict(by_release)}; {dict(by_mode)}); switch took "
        f"{1000 * (end - start):.1f} ms ({1000 * STAGING_PAUSE:.0f} ms of it paused with views staged), "
        f"{len(during)} samples overlapped it; read latency median "
        f"{1000 * statistics.median(latencies):.1f} ms, max {1000 * max(latencies):.1f} ms, max during "
        f"the switch {1000 * max(s.latency for s in during):.1f} ms"
    )
    assert not mixed, f"{len(mixed)} mixed reads, first: {mixed[0]}"
    assert set(order[:first_new]) == {1} and set(order[first_new:]) == {2}, "went back to the old release"
    assert len(during) >= 2 and {s.marker for s in during} >= {1}
    assert set(by_mode) == {"transaction", "statement"}
    assert first.release_id == 1 and pg.marker("dev")[0] == 2
