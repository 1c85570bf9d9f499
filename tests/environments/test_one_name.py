"""One name, one environment, through `releasekit.api` on DuckDB: a declared environment
never inherits the ledger of a branch environment of the same name, a declaration that
collides with a live branch environment is refused naming both (and `env gc` still works),
and a branch ledger an older releasekit wrote is found, and never taken for a declared one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.errors import ConfigError, NotFoundError, StateError
from tests.support.projects import commit, git, make_repo, write_files
from tests.support.warehouse_reads import every_view_selects

pytestmark = pytest.mark.integration


def _declare(repo: Path, name: str) -> None:
    write_files(repo, {f"environments/{name}.yml": f"version: 1\nschema: {name}_env\n"})
    commit(repo, f"declare {name}")


def test_a_declared_environment_never_inherits_a_torn_down_branch_environments_releases(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    git(repo, "branch", "qa")
    api.env_up(Workspace.open(repo), "qa")
    api.env_down(Workspace.open(repo), "qa")
    git(repo, "branch", "-D", "qa")
    _declare(repo, "qa")
    result = api.deploy(Workspace.open(repo), "qa")
    assert (result.release_id, result.plan.live) == (1, None)
    entries = api.releases(Workspace.open(repo), "qa")
    assert [(e.release_id, e.outcome) for e in entries] == [(1, "switching"), (1, "succeeded")]
    with pytest.raises(NotFoundError, match="no retained release older"):
        api.rollback(Workspace.open(repo), "qa")
    assert (repo / ".releasekit" / "ledger" / "branch~qa" / "00000001.json").is_file()
    every_view_selects(repo, "qa_env")


def test_a_declaration_colliding_with_a_live_branch_environment_is_refused_until_it_is_down(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    api.env_up(Workspace.open(repo), "qa")  # its git branch never existed: env gc drops it
    _declare(repo, "qa")
    for command in (
        lambda: api.deploy(Workspace.open(repo), "qa"),
        lambda: api.gc(Workspace.open(repo)),
        lambda: api.status(Workspace.open(repo)),
    ):
        with pytest.raises(ConfigError) as refused:
            command()
        said = f"{refused.value.message}\n{refused.value.hint}"
        assert "environments/qa.yml" in said or "qa.yml" in said
        assert "branch 'qa'" in said and "schema 'br_qa'" in said
        assert "releasekit env down qa" in said and "rename the environment file" in said
    [dropped] = api.env_gc(Workspace.open(repo))
    assert dropped.record.branch == "qa"
    assert api.deploy(Workspace.open(repo), "qa").release_id == 1


def test_a_branch_ledger_in_the_old_layout_is_found_and_a_declaration_of_its_name_says_how_to_move_it(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    api.env_up(Workspace.open(repo), "legacy")
    ledgers = repo / ".releasekit" / "ledger"
    (ledgers / "branch~legacy").rename(ledgers / "legacy")  # where an older releasekit wrote it
    assert len(api.releases(Workspace.open(repo), "legacy")) == 2
    api.env_down(Workspace.open(repo), "legacy")
    assert len(list((ledgers / "legacy").glob("*.json"))) == 3 and not (ledgers / "branch~legacy").exists()
    _declare(repo, "legacy")
    with pytest.raises(StateError, match=re.escape(str(ledgers / "legacy"))) as refused:
        api.deploy(Workspace.open(repo), "legacy")
    assert str(ledgers / "branch~legacy") in str(refused.value.hint)
    shutil.move(ledgers / "legacy", ledgers / "branch~legacy")  # the move the hint names
    assert api.deploy(Workspace.open(repo), "legacy").release_id == 1
