"""One branch environment's ledger with a corrupted entry, through `releasekit.api` on
DuckDB: only what touches that environment fails (naming the file); other environments
deploy, planning without it; gc keeps every relation, names the ledger, and drops nothing
until it reads again; a deploy that would have to drop a relation that ledger might serve
refuses before building anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.errors import StateError
from releasekit.state.codec import env_key
from tests.support.projects import BASE_FILES, branch_here, commit, make_repo, write_files
from tests.support.warehouse_reads import every_view_selects, physical, sql

pytestmark = pytest.mark.integration

BRANCH = "feature/x"
UNUSED = "orders__0badc0de"


def _broken(tmp_path: Path) -> tuple[Path, Path]:
    """dev deployed, a branch environment up, an unused relation, and the branch's ledger
    with its last entry corrupted."""
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    api.env_up(Workspace.open(repo), BRANCH)
    sql(repo, f"create table rk__physical.{UNUSED} as select 1 as id")
    folder = repo / ".releasekit" / "ledger" / f"branch~{env_key(BRANCH)}"
    last = sorted(folder.glob("*.json"))[-1]
    last.write_text('{"format": "releasekit.ledger/1", "env": ')
    return repo, last


def _rename_customer(repo: Path, name: str) -> None:
    text = BASE_FILES["models/stg_customers.sql"].replace("bob", name)
    write_files(repo, {"models/stg_customers.sql": text})
    commit(repo, f"customer 2 is {name}")


@pytest.mark.slow
def test_other_environments_deploy_and_the_broken_one_fails_naming_its_file(tmp_path: Path) -> None:
    repo, last = _broken(tmp_path)
    _rename_customer(repo, "rob")
    result = api.deploy(Workspace.open(repo), "dev")
    assert result.outcome == "succeeded"
    branch_here(repo)  # prod deploys only its branch head, as after a promotion
    assert api.deploy(Workspace.open(repo), "prod").outcome == "succeeded"
    every_view_selects(repo, "dev")
    every_view_selects(repo, "prod")
    with pytest.raises(StateError, match=re.escape(str(last))):
        api.deploy(Workspace.open(repo), BRANCH)
    with pytest.raises(StateError, match=re.escape(str(last))):
        api.rollback(Workspace.open(repo), BRANCH)


def test_gc_keeps_everything_and_names_the_ledger_until_it_reads_again(tmp_path: Path) -> None:
    repo, last = _broken(tmp_path)
    broken = last.read_bytes()
    before = physical(repo)
    [result] = api.gc(Workspace.open(repo))
    assert result.dropped == () and physical(repo) == before
    [problem] = result.blocked
    assert str(last) in problem
    last.unlink()  # the entry restored: here, its (killed) write never happened
    [swept] = api.gc(Workspace.open(repo))
    assert UNUSED in swept.dropped and not swept.blocked
    last.write_bytes(broken)


def test_a_deploy_never_drops_what_an_unreadable_ledger_might_serve(tmp_path: Path) -> None:
    repo, last = _broken(tmp_path)
    _rename_customer(repo, "tom")
    wanted = api.plan(Workspace.open(repo), "dev").builds[0].relation
    sql(repo, f"create table rk__physical.{wanted} as select 1 as served_elsewhere")
    with pytest.raises(StateError, match=re.escape(str(last))) as refused:
        api.deploy(Workspace.open(repo), "dev")
    assert wanted in refused.value.message
    assert sql(repo, f"select * from rk__physical.{wanted}") == [(1,)]  # not dropped


def test_env_list_names_the_broken_ledger_and_env_gc_drops_the_others_and_leaves_it(tmp_path: Path) -> None:
    repo, last = _broken(tmp_path)  # neither branch exists in git: env gc would drop both
    api.env_up(Workspace.open(repo), "gone")
    statuses = {s.record.branch: s for s in api.env_list(Workspace.open(repo))}
    assert str(last) in statuses[BRANCH].unreadable and statuses[BRANCH].live_release is None
    assert not statuses["gone"].unreadable and statuses["gone"].live_release == 1
    dropped = api.env_gc(Workspace.open(repo))
    assert [s.record.branch for s in dropped] == ["gone"]
    assert [r.branch for r in Workspace.open(repo).store.branches()] == [BRANCH]
