"""rollback, gc and status through `releasekit.api`: real git, real dbt, real DuckDB.

Releases cost real dbt runs, so each scenario is deployed once per module into a
template repository; every test works on its own copy of it (git history, state folder
and DuckDB file together, like a CI runner restoring a workspace). The copy leaves out
dbt's partial-parse cache, which names the template's absolute paths.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from releasekit import api
from releasekit.api import Workspace
from releasekit.engine.deploy import deploy as engine_deploy
from releasekit.errors import NotFoundError, StateError
from releasekit.reporting.terminal import TerminalReporter
from tests.support.projects import BASE_FILES, ENV_FILES, branch_here, commit, make_repo, write_files
from tests.support.warehouse_reads import every_view_selects, marker, physical, sql, views

pytestmark = pytest.mark.integration


# --- reading the warehouse -----------------------------------------------------------------


def clone(template: Path, destination: Path) -> Path:
    def skip(folder: str, _names: list[str]) -> list[str]:
        return ["dbt"] if Path(folder).name == ".releasekit" else []

    shutil.copytree(template, destination, symlinks=True, ignore=skip)
    return destination


def rename_customer(repo: Path, name: str) -> str:
    write_files(
        repo, {"models/stg_customers.sql": BASE_FILES["models/stg_customers.sql"].replace("bob", name)}
    )
    return commit(repo, f"customer 2 is {name}")


@dataclass(frozen=True)
class Released:
    """A template repository and what each of its dev releases serves."""

    template: Path
    shas: dict[int, str]  # dev release id -> commit
    dev_views: dict[int, dict[str, str]]  # dev release id -> view -> relation
    prod_views: dict[str, str]


# --- rollback ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_releases(tmp_path_factory: pytest.TempPathFactory) -> Released:
    """dev released three times (default retention 3): customer 2 is bob, rob, then tom."""
    repo = make_repo(tmp_path_factory.mktemp("rollback") / "template")
    workspace = Workspace.open(repo)
    shas, dev_views = {}, {}
    for release_id, name in ((1, None), (2, "rob"), (3, "tom")):
        shas[release_id] = rename_customer(repo, name) if name else workspace.repo.head_sha()
        result = api.deploy(workspace, "dev")
        assert (result.outcome, result.release_id) == ("succeeded", release_id)
        dev_views[release_id] = views(repo, "dev")
    return Released(repo, shas, dev_views, {})


@pytest.fixture
def released(three_releases: Released, tmp_path: Path) -> tuple[Path, Workspace]:
    repo = clone(three_releases.template, tmp_path / "repo")
    return repo, Workspace.open(repo)


def customer_2(repo: Path) -> str:
    [(name,)] = sql(repo, "select name from dev.customers where customer_id = 2")
    return str(name)


def test_rollback_switches_to_the_previous_release_and_builds_nothing(
    three_releases: Released, released: tuple[Path, Workspace]
) -> None:
    repo, workspace = released
    before = physical(repo)

    result = api.rollback(workspace, "dev")

    assert (result.env, result.from_release, result.to_release) == ("dev", 3, 2)
    assert result.git_sha == three_releases.shas[2]
    assert result.views == len(three_releases.dev_views[2])
    moved = {
        v for v, target in three_releases.dev_views[3].items() if three_releases.dev_views[2][v] != target
    }
    assert 0 < result.changed == len(moved) < result.views  # only the views the rename rebuilt
    assert views(repo, "dev") == three_releases.dev_views[2]
    assert physical(repo) == before  # nothing built, nothing dropped
    assert marker(repo, "dev") == (2, "dev", three_releases.shas[2])
    assert customer_2(repo) == "rob"


def test_a_rollback_to_a_release_on_the_same_relations_switches_no_view(
    released: tuple[Path, Workspace],
) -> None:
    _, workspace = released
    run = workspace.run_context(workspace.environment("dev"), builds=True)
    again = engine_deploy(run, resync=True)  # the live release switched in again, as a new release
    assert again.outcome == "succeeded" and again.release_id == 4

    result = api.rollback(workspace, "dev")

    assert (result.from_release, result.to_release, result.changed) == (4, 3, 0)
    console = Console(record=True, width=200)
    TerminalReporter(console).rollback(result)
    assert "no view changed" in console.export_text() and "views switched" not in console.export_text()


def test_rollback_to_release_1_is_recorded_in_the_ledger(
    three_releases: Released, released: tuple[Path, Workspace]
) -> None:
    repo, workspace = released

    result = api.rollback(workspace, "dev", to=1)

    assert (result.from_release, result.to_release) == (3, 1)
    assert views(repo, "dev") == three_releases.dev_views[1]
    assert customer_2(repo) == "bob"
    entries = api.releases(workspace, "dev")
    assert [(e.release_id, e.kind, e.outcome) for e in entries] == [
        (1, "deploy", "switching"),
        (1, "deploy", "succeeded"),
        (2, "deploy", "switching"),
        (2, "deploy", "succeeded"),
        (3, "deploy", "switching"),
        (3, "deploy", "succeeded"),
        (1, "rollback", "switching"),
        (1, "rollback", "succeeded"),
    ]
    rollback = entries[-1]
    assert (rollback.git_sha, rollback.previous_release, rollback.built) == (three_releases.shas[1], 3, ())
    assert {v.relation for v in rollback.models.values()} == set(three_releases.dev_views[1].values())
    # Release 1 is the oldest: there is nothing older to go back to from there.
    with pytest.raises(NotFoundError, match=r"no retained release older than live release 1.*: 2, 3"):
        api.rollback(workspace, "dev")


def test_rollback_to_a_release_that_is_not_retained_names_the_retained_ones(
    released: tuple[Path, Workspace],
) -> None:
    repo, workspace = released
    entries = api.releases(workspace, "dev")
    views_before = views(repo, "dev")

    with pytest.raises(NotFoundError) as unknown:
        api.rollback(workspace, "dev", to=99)
    assert "release 99" in str(unknown.value)
    assert "releases to roll back to: 1, 2" in str(unknown.value)
    with pytest.raises(NotFoundError, match="already live"):
        api.rollback(workspace, "dev", to=3)

    assert api.releases(workspace, "dev") == entries
    assert views(repo, "dev") == views_before
    assert marker(repo, "dev")[0] == 3


def test_deploy_after_a_rollback_reuses_the_later_release_and_builds_nothing(
    three_releases: Released, released: tuple[Path, Workspace]
) -> None:
    repo, workspace = released
    api.rollback(workspace, "dev", to=1)
    before = physical(repo)

    result = api.deploy(workspace, "dev")  # HEAD is release 3's commit

    assert (result.outcome, result.release_id) == ("succeeded", 4)
    assert result.plan.builds == ()
    assert views(repo, "dev") == three_releases.dev_views[3]
    assert physical(repo) == before
    assert marker(repo, "dev") == (4, "dev", three_releases.shas[3])


# --- status --------------------------------------------------------------------------------


def test_status_shows_each_live_release_and_no_drift(
    three_releases: Released, released: tuple[Path, Workspace]
) -> None:
    _, workspace = released
    dev, prod = api.status(workspace)
    assert (dev.env, dev.schema, dev.releases, dev.drift) == ("dev", "dev", 3, False)
    assert dev.live is not None and dev.marker is not None
    assert (dev.live.release_id, dev.marker.release_id) == (3, 3)
    assert dev.marker.git_sha == three_releases.shas[3]
    assert (prod.env, prod.live, prod.marker, prod.releases, prod.drift) == ("prod", None, None, 0, False)

    api.rollback(workspace, "dev")
    [dev] = [s for s in api.status(workspace) if s.env == "dev"]
    assert dev.live is not None and dev.marker is not None
    assert (dev.live.release_id, dev.live.kind, dev.marker.release_id, dev.drift) == (2, "rollback", 2, False)
    assert dev.releases == 3  # a rollback makes no new release


def test_status_reports_drift_when_the_marker_is_changed_by_hand(released: tuple[Path, Workspace]) -> None:
    repo, workspace = released
    sql(
        repo,
        "create or replace view dev._releasekit_release as select 99 as release_id, 'dev' as env, "
        "'cafe' as git_sha, '2020-01-01' as switched_at",
    )
    [dev] = [s for s in api.status(workspace) if s.env == "dev"]
    assert dev.drift
    assert dev.marker is not None and dev.live is not None
    assert (dev.marker.release_id, dev.live.release_id) == (99, 3)

    sql(repo, "drop view dev._releasekit_release")
    [dev] = [s for s in api.status(workspace) if s.env == "dev"]
    assert (dev.drift, dev.marker) == (True, None)

    # A switch rewrites the marker: the warehouse agrees with the ledger again.
    api.rollback(workspace, "dev")
    [dev] = [s for s in api.status(workspace) if s.env == "dev"]
    assert not dev.drift
    assert dev.marker is not None and dev.marker.release_id == 2


# --- gc --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retention_1(tmp_path_factory: pytest.TempPathFactory) -> Released:
    """dev keeps 1 release: released 3 times; prod released once, after dev's first."""
    dev_yml = ENV_FILES["environments/dev.yml"] + "retention: 1\n"
    repo = make_repo(tmp_path_factory.mktemp("gc") / "template", {"environments/dev.yml": dev_yml})
    workspace = Workspace.open(repo)
    shas = {1: workspace.repo.head_sha()}
    dev_views = {}
    assert api.deploy(workspace, "dev").release_id == 1
    dev_views[1] = views(repo, "dev")
    branch_here(repo, "prod")
    assert api.deploy(workspace, "prod").release_id == 1
    for release_id, name in ((2, "rob"), (3, "tom")):
        shas[release_id] = rename_customer(repo, name)
        assert api.deploy(workspace, "dev").release_id == release_id
        dev_views[release_id] = views(repo, "dev")
    return Released(repo, shas, dev_views, views(repo, "prod"))


@pytest.fixture
def collectable(retention_1: Released, tmp_path: Path) -> tuple[Path, Workspace]:
    repo = clone(retention_1.template, tmp_path / "repo")
    sql(repo, "create table rk__physical.foo__dbt_tmp as select 1 as leftover")
    return repo, Workspace.open(repo)


def expected_garbage(released: Released) -> set[str]:
    every = set().union(*(set(v.values()) for v in released.dev_views.values()))
    live = set(released.dev_views[3].values()) | set(released.prod_views.values())
    return (every - live) | {"foo__dbt_tmp"}


def test_gc_dry_run_lists_what_it_would_drop_and_drops_nothing(
    retention_1: Released, collectable: tuple[Path, Workspace]
) -> None:
    repo, workspace = collectable
    before = physical(repo)

    [result] = api.gc(workspace, dry_run=True)

    assert result.dry_run
    assert result.physical_schema == "rk__physical"
    assert set(result.dropped) == expected_garbage(retention_1)
    assert result.kept == len(before) - len(result.dropped)
    assert physical(repo) == before


def test_gc_drops_unretained_versions_and_leftovers_and_keeps_what_is_live(
    retention_1: Released, collectable: tuple[Path, Workspace]
) -> None:
    repo, workspace = collectable
    before = physical(repo)
    dev_live, prod_live = retention_1.dev_views[3], retention_1.prod_views
    # prod reuses relations dev built in release 1 and no longer retains (retention 1):
    shared = {prod_live[name] for name in ("stg_customers", "customers")}
    assert not shared & set(dev_live.values())

    [result] = api.gc(workspace)

    assert set(result.dropped) == expected_garbage(retention_1)
    assert "foo__dbt_tmp" in result.dropped
    after = physical(repo)
    assert after == before - set(result.dropped)
    assert after == set(dev_live.values()) | set(prod_live.values())
    assert shared <= after
    assert views(repo, "dev") == dev_live
    assert views(repo, "prod") == prod_live
    every_view_selects(repo, "dev")
    every_view_selects(repo, "prod")
    # A second gc finds nothing more.
    [again] = api.gc(workspace)
    assert again.dropped == ()


def test_rollback_past_the_retention_window_is_refused(collectable: tuple[Path, Workspace]) -> None:
    repo, workspace = collectable
    with pytest.raises(NotFoundError, match="releases to roll back to: none"):
        api.rollback(workspace, "dev", to=2)
    with pytest.raises(NotFoundError, match="no retained release older"):
        api.rollback(workspace, "dev")
    assert marker(repo, "dev")[0] == 3


def test_gc_refuses_an_empty_ledger_and_its_dry_run_spares_live_views(
    retention_1: Released, collectable: tuple[Path, Workspace], tmp_path: Path
) -> None:
    """A state folder that lost its ledger (say, a fresh CI runner) names no release at all:
    gc refuses to drop anything, and even its dry run never lists what views read."""
    repo, _ = collectable
    forgetful = Workspace.open(repo, overrides={"state_path": tmp_path / "empty-state"})
    assert api.releases(forgetful, "dev") == api.releases(forgetful, "prod") == []
    before = physical(repo)

    with pytest.raises(StateError, match="empty"):
        api.gc(forgetful)
    [dry] = api.gc(forgetful, dry_run=True)

    live = set(retention_1.dev_views[3].values()) | set(retention_1.prod_views.values())
    assert physical(repo) == before
    assert dry.dropped and not live & set(dry.dropped)
    every_view_selects(repo, "dev")
    every_view_selects(repo, "prod")
