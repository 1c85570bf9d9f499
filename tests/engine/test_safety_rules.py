"""Rules that keep users from losing work: what gc refuses, what counts as dirty, and
what a plan says about seeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from releasekit import api
from releasekit.errors import ConfigError, DirtyWorktreeError, StateError
from tests.support.projects import BASE_FILES, branch_here, commit, make_repo, write_files
from tests.support.warehouse_reads import physical

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert api.deploy(api.Workspace.open(repo), "dev").ok
    return repo


def test_gc_refuses_to_run_on_an_empty_ledger(deployed: Path) -> None:
    shutil.rmtree(deployed / ".releasekit" / "ledger")
    before = physical(deployed)
    dry = api.gc(api.Workspace.open(deployed), dry_run=True)  # a dry run only lists
    assert dry[0].dropped == ()  # live views still protect every relation here
    write_files(deployed, {"models/stg_orders.sql": BASE_FILES["models/stg_orders.sql"] + "-- v2\n"})
    commit(deployed, "v2")
    shutil.rmtree(deployed / ".releasekit")
    # A fresh, empty state folder: the old relations are not read by any view any more
    # once a new deploy switches dev, yet gc must not drop rollback targets it cannot see.
    assert api.deploy(api.Workspace.open(deployed), "dev").ok
    shutil.rmtree(deployed / ".releasekit" / "ledger")
    with pytest.raises(StateError, match=r"ledger .* is empty"):
        api.gc(api.Workspace.open(deployed))
    assert before <= physical(deployed)


def test_gc_keeps_releases_of_an_environment_no_longer_declared(deployed: Path) -> None:
    workspace = api.Workspace.open(deployed)
    branch_here(deployed, "prod")
    assert api.deploy(workspace, "prod").ok
    prod_relations = {v.relation for v in api.releases(workspace, "prod")[-1].models.values()}
    (deployed / "environments" / "prod.yml").unlink()
    commit(deployed, "drop prod from the config")
    api.gc(api.Workspace.open(deployed))
    assert prod_relations <= physical(deployed)


def test_untracked_files_dbt_does_not_read_are_not_dirty(deployed: Path) -> None:
    (deployed / "notes.txt").write_text("todo")
    (deployed / "deploy.log").write_text("output")
    assert api.Workspace.open(deployed).dirty_files() == []
    (deployed / "models" / "new_model.sql").write_text("select 1 as id")
    with pytest.raises(DirtyWorktreeError, match=r"models/new_model\.sql"):
        api.deploy(api.Workspace.open(deployed), "dev")


def test_a_seed_edit_is_explained_as_seed_data(deployed: Path) -> None:
    write_files(deployed, {"seeds/raw_orders.csv": BASE_FILES["seeds/raw_orders.csv"] + "4,2,99\n"})
    commit(deployed, "more orders")
    plan = api.plan(api.Workspace.open(deployed), "dev")
    reasons = {step.name: step.reasons for step in plan.builds}
    assert reasons["raw_orders"] == ("seed data changed",)
    assert reasons["stg_orders"] == ("parent raw_orders changed",)


def test_grants_on_duckdb_are_refused_before_anything_is_built_or_recorded(tmp_path: Path) -> None:
    files = {"environments/dev.yml": "version: 1\nschema: dev\ngrants:\n  select: [reporter]\n"}
    repo = make_repo(tmp_path / "repo", files)
    with pytest.raises(ConfigError, match="declares grants, but duckdb has no GRANT") as refused:
        api.deploy(api.Workspace.open(repo), "dev")
    assert refused.value.file == "dev.yml" and refused.value.key == "grants"
    assert api.releases(api.Workspace.open(repo), "dev") == []
    assert physical(repo) == set()
