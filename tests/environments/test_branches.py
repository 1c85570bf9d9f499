"""Branch environments on DuckDB: up, deploy, rollback, down, gc, through the API."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.errors import ConfigError, NotFoundError
from tests.support.projects import BASE_FILES, commit, git, make_repo, write_files
from tests.support.warehouse_reads import physical, sql, views

pytestmark = pytest.mark.integration

BRANCH = 'feat/$(touch${IFS}canary);"x"'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert api.deploy(Workspace.open(repo), "dev").ok
    git(repo, "switch", "-q", "-c", BRANCH)
    return repo


def schemas(repo: Path) -> set[str]:
    return {name for (name,) in sql(repo, "select schema_name from duckdb_schemas()")}


def test_env_up_serves_the_base_release_without_building_or_copying(repo: Path) -> None:
    before = physical(repo)
    up = api.env_up(Workspace.open(repo))
    assert up.created and up.record.branch == BRANCH and up.record.base == "dev"
    assert views(repo, up.record.schema) == views(repo, "dev")
    assert physical(repo) == before
    assert sql(repo, f"select count(*) from {up.record.schema}.orders") == sql(
        repo, "select count(*) from dev.orders"
    )
    assert not (repo / "canary").exists()
    again = api.env_up(Workspace.open(repo))
    assert not again.created and again.record == up.record
    assert [s.record.branch for s in api.env_list(Workspace.open(repo))] == [BRANCH]


def test_a_branch_deploy_builds_the_change_and_switches_only_the_branch(repo: Path) -> None:
    workspace = Workspace.open(repo)
    up = api.env_up(workspace)
    dev_before, prod_before = views(repo, "dev"), views(repo, "prod")
    write_files(
        repo,
        {
            "models/revenue.sql": BASE_FILES["models/revenue.sql"].replace(
                "sum(amount_cents)", "sum(amount_cents * 1)"
            )
        },
    )
    commit(repo, "revenue: explicit arithmetic")
    result = api.deploy(Workspace.open(repo))  # no name: the current branch's environment
    assert result.plan.env == BRANCH
    assert {step.name for step in result.plan.builds} == {"revenue", "big_spenders"}
    assert views(repo, "dev") == dev_before and views(repo, "prod") == prod_before
    assert views(repo, up.record.schema)["revenue"] != dev_before["revenue"]
    rolled = api.rollback(Workspace.open(repo), BRANCH)
    assert views(repo, up.record.schema) == dev_before and rolled.to_release == 1


def test_env_down_drops_the_schema_and_gc_reclaims_only_what_it_used(repo: Path) -> None:
    workspace = Workspace.open(repo)
    up = api.env_up(workspace)
    write_files(
        repo,
        {
            "models/revenue.sql": BASE_FILES["models/revenue.sql"].replace(
                "sum(amount_cents)", "sum(amount_cents * 1)"
            )
        },
    )
    commit(repo, "branch change")
    branch_built = {s.relation for s in api.deploy(Workspace.open(repo), BRANCH).plan.builds}
    down = api.env_down(Workspace.open(repo), BRANCH)
    assert down.schema_dropped and up.record.schema not in schemas(repo)
    assert api.env_list(Workspace.open(repo)) == []
    [result] = api.gc(Workspace.open(repo))
    assert set(result.dropped) == branch_built
    assert set(views(repo, "dev").values()) <= physical(repo)


def test_declared_environments_are_never_brought_up_or_dropped_as_branches(repo: Path) -> None:
    workspace = Workspace.open(repo)
    for name in ("dev", "main", "prod"):
        with pytest.raises(ConfigError, match="declared environment"):
            api.env_down(workspace, name)
        with pytest.raises(ConfigError, match="declared environment"):
            api.env_up(workspace, name)
    with pytest.raises(NotFoundError, match="no branch environment"):
        api.env_down(workspace, "never-made")
    assert "dev" in schemas(repo)


def test_env_gc_drops_gone_and_expired_branches_and_keeps_pinned_ones(repo: Path) -> None:
    workspace = Workspace.open(repo)
    api.env_up(workspace)  # BRANCH: will be deleted
    for name in ("old", "kept"):
        git(repo, "branch", name)
        api.env_up(workspace, name, pin=name == "kept")
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-D", BRANCH)
    later = datetime.now(UTC) + timedelta(days=30)
    dry = api.env_gc(workspace, dry_run=True, now=later)
    assert {s.record.branch for s in dry} == {BRANCH, "old"}
    assert len(api.env_list(workspace)) == 3
    api.env_gc(workspace, now=later)
    assert [s.record.branch for s in api.env_list(workspace)] == ["kept"]


def test_an_interrupted_env_up_is_finished_by_the_next_one(repo: Path) -> None:
    workspace = Workspace.open(repo)
    up = api.env_up(workspace)
    # A run killed after registering but before its switch: the registry names a schema
    # that does not exist yet.
    sql(repo, f'drop schema "{up.record.schema}" cascade')
    again = api.env_up(Workspace.open(repo))
    assert again.created and views(repo, up.record.schema) == views(repo, "dev")


def test_a_branch_environment_of_a_deleted_branch_with_no_schema_is_still_collected(repo: Path) -> None:
    workspace = Workspace.open(repo)
    up = api.env_up(workspace)
    sql(repo, f'drop schema "{up.record.schema}" cascade')
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-D", BRANCH)
    [gone] = api.env_gc(Workspace.open(repo))
    assert gone.record == dataclasses.replace(up.record) and api.env_list(Workspace.open(repo)) == []
