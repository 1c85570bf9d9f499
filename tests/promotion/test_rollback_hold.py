"""A rollback holds its environment: the next `sync` does not redeploy what was rolled
back. Real git and dbt on DuckDB. dev follows main; staging promotes from dev."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_promote import FILES

from releasekit import api
from releasekit.api import Workspace
from releasekit.state.base import LedgerEntry
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, commit, git, make_repo, write_files
from tests.support.warehouse_reads import views

pytestmark = pytest.mark.integration

REVENUE = BASE_FILES["models/revenue.sql"]


def change_revenue(repo: Path, tag: str) -> str:
    write_files(repo, {"models/revenue.sql": f"{REVENUE}-- {tag}\n"})
    return commit(repo, tag)


def entries(repo: Path, env: str = "dev") -> list[LedgerEntry]:
    return api.releases(Workspace.open(repo), env)


@pytest.fixture
def held(tmp_path: Path) -> Path:
    """dev served release 1 (the first commit), then release 2 (a change to revenue) by a
    sync, and was rolled back to release 1: it is held against release 2's commit."""
    repo = make_repo(tmp_path / "repo", FILES)
    assert api.deploy(Workspace.open(repo), "dev").ok
    change_revenue(repo, "bad")
    assert api.sync(Workspace.open(repo), "dev").changed
    rolled = api.rollback(Workspace.open(repo), "dev")
    assert (rolled.from_release, rolled.to_release) == (2, 1) and rolled.hold is not None
    return repo


def test_sync_after_a_rollback_leaves_the_environment_alone_and_says_so(held: Path) -> None:
    before, served = entries(held), views(held, "dev")
    bad = git(held, "rev-parse", "main")

    run = run_cli(held, "sync", "dev")

    assert run.code == 0, run.text()
    said = " ".join(run.stdout.split())
    assert "dev is held" in said and "rolled back from release 2" in said and "--force" in said
    assert entries(held) == before and views(held, "dev") == served
    synced = api.sync(Workspace.open(held), "dev")
    assert synced.held and synced.deployed is None and not synced.changed
    [dev] = [s for s in api.status(Workspace.open(held)) if s.env == "dev"]
    assert dev.hold is not None and dev.hold.from_release == 2 and dev.hold.from_commit == bad
    assert dev.hold.who == "Test User <test@example.com>" and dev.hold.to_release == 1
    assert dev.git_drift == ()  # the hold explains why main is ahead of what dev serves
    status = " ".join(run_cli(held, "status").stdout.split())
    assert "held since" in status and "rolled back from release 2" in status
    assert "holds sync" in run_cli(held, "releases", "dev").stdout


def test_a_commit_with_the_same_project_does_not_lift_the_hold(held: Path) -> None:
    git(held, "commit", "-q", "--allow-empty", "-m", "retrigger CI")
    git(held, "commit", "-q", "--amend", "--allow-empty", "-m", "retrigger CI, reworded")  # as a rebase would
    synced = api.sync(Workspace.open(held), "dev")
    assert synced.held and synced.deployed is None
    assert entries(held)[-1].kind == "rollback"


def test_a_commit_changing_the_project_lifts_the_hold_and_sync_deploys_it(held: Path) -> None:
    fixed = change_revenue(held, "fixed")
    synced = api.sync(Workspace.open(held), "dev")
    assert not synced.held and synced.changed and synced.deployed is not None
    last = entries(held)[-1]
    assert (last.kind, last.outcome, last.git_sha) == ("deploy", "succeeded", fixed)
    assert last.hold["action"] == "lift" and last.hold["by"] == "sync" and last.hold["held_release"] == 1
    [dev] = [s for s in api.status(Workspace.open(held)) if s.env == "dev"]
    assert dev.hold is None


def test_sync_force_deploys_the_branch_head_and_ends_the_hold(held: Path) -> None:
    bad = git(held, "rev-parse", "main")
    run = run_cli(held, "sync", "dev", "--force")
    assert run.code == 0, run.text()
    last = entries(held)[-1]
    assert (last.kind, last.outcome, last.git_sha) == ("deploy", "succeeded", bad)
    assert last.hold["by"] == "sync --force"
    assert api.sync(Workspace.open(held), "dev").deployed is None  # in sync, not held


def test_an_explicit_deploy_ends_the_hold(held: Path) -> None:
    deployed = api.deploy(Workspace.open(held), "dev")
    assert deployed.outcome == "succeeded" and deployed.plan.builds == ()  # release 2's tables
    last = entries(held)[-1]
    assert last.hold["action"] == "lift" and last.hold["by"] == "deploy"
    assert [s.hold for s in api.status(Workspace.open(held)) if s.env == "dev"] == [None]


def test_a_deploy_of_what_the_held_environment_serves_switches_to_record_the_end(held: Path) -> None:
    git(held, "switch", "-q", "--detach", "main~1")  # the commit dev was rolled back to
    deployed = api.deploy(Workspace.open(held), "dev")
    assert deployed.plan.is_noop and deployed.outcome == "succeeded" and deployed.release_id == 3
    assert entries(held)[-1].hold["by"] == "deploy"
    assert api.deploy(Workspace.open(held), "dev").outcome == "noop"  # no hold: nothing to record


def test_a_promotion_into_a_held_environment_goes_through_and_ends_the_hold(held: Path) -> None:
    bad = git(held, "rev-parse", "main")
    assert api.promote(Workspace.open(held), "staging").commit != bad  # staging: dev's release 1
    git(held, "branch", "-f", "staging", bad)  # merged by hand, then synced: staging release 2
    assert api.sync(Workspace.open(held), "staging").changed
    api.rollback(Workspace.open(held), "staging")
    assert api.sync(Workspace.open(held), "staging").held
    # dev moves on. staging's branch is still at what it rolled back from: the hold explains
    # that, so the drift gate lets the promotion through without --force.
    new = change_revenue(held, "new")
    assert api.deploy(Workspace.open(held), "dev").ok
    promoted = api.promote(Workspace.open(held), "staging")
    assert promoted.deployed is not None and promoted.deployed.outcome == "succeeded"
    [drift] = [gate for gate in promoted.gates if gate.name == "drift"]
    assert drift.passed and not drift.forced
    last = entries(held, "staging")[-1]
    assert (last.git_sha, last.hold["action"], last.hold["by"]) == (new, "lift", "promote")


def test_a_second_rollback_keeps_holding_against_what_the_first_rolled_back_from(held: Path) -> None:
    assert api.sync(Workspace.open(held), "dev", force=True).changed  # release 3: the bad commit again
    worse = change_revenue(held, "worse")
    assert api.sync(Workspace.open(held), "dev").changed  # release 4
    api.rollback(Workspace.open(held), "dev")  # to 3, held against "worse"
    api.rollback(Workspace.open(held), "dev", to=2)  # from 3 ("bad"), still held against "worse"
    synced = api.sync(Workspace.open(held), "dev")
    assert synced.held and synced.head == worse and synced.hold is not None
    assert synced.hold.commits[-2:] == (worse, git(held, "rev-parse", "main~1"))
