"""A promoted environment (one with `promotes_from`) deploys only what was promoted into it:
`releasekit deploy` of another commit is refused with exit 2, naming the branch, the commit
and the fix, unless `--force --reason`, which the ledger records and `status` shows. Real
git and dbt on DuckDB; staging promotes from dev, prod from staging (test_promote.FILES)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_promote import FILES

from releasekit import api
from releasekit.api import Workspace
from releasekit.errors import UnpromotedDeployError
from releasekit.gitops.repo import GitRepo
from releasekit.promotion.guard import unpromoted
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, branch_here, commit, git, make_repo, write_files

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


def test_deploying_prod_without_a_promotion_is_refused_naming_branch_commit_and_fix(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    run = run_cli(repo, "deploy", "prod")
    assert run.code == 2, run.text()
    said = " ".join(run.stderr.split())
    assert "branch prod does not exist" in said and sha[:12] in said
    assert "releasekit promote prod" in said and "releasekit sync prod" in said and "--force" in said
    assert api.releases(Workspace.open(repo), "prod") == []
    with pytest.raises(UnpromotedDeployError, match="staging is promoted from dev"):
        api.deploy(Workspace.open(repo), "staging")


def test_only_the_branch_head_deploys_once_the_branch_exists(repo: Path) -> None:
    assert api.deploy(Workspace.open(repo), "dev").ok
    promoted = api.promote(Workspace.open(repo), "staging")
    assert promoted.deployed is not None and promoted.deployed.ok
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    v2 = commit(repo, "v2, not promoted")
    where = f"branch staging is at {promoted.commit[:12]}"
    with pytest.raises(UnpromotedDeployError, match=where) as refused:
        api.deploy(Workspace.open(repo), "staging")
    assert v2[:12] in refused.value.message
    assert len(api.releases(Workspace.open(repo), "staging")) == 2  # switching + succeeded, as before

    git(repo, "switch", "-q", "staging")  # a checkout of the branch head deploys as before
    assert api.deploy(Workspace.open(repo), "staging").outcome == "noop"


def test_plan_warns_that_deploy_would_refuse_and_still_shows_the_plan(repo: Path) -> None:
    run = run_cli(repo, "plan", "prod")
    assert run.code == 0, run.text()
    said = " ".join(run.stdout.split())
    assert "would refuse this commit" in said and "branch prod does not exist" in said
    assert "releasekit promote prod" in said and "to build" in said
    workspace = Workspace.open(repo)
    dev = workspace.config.environment("dev")  # no promotes_from: any commit deploys
    assert unpromoted(GitRepo(repo), dev, git(repo, "rev-parse", "HEAD")) is None


@pytest.mark.slow
def test_force_needs_a_reason_and_the_forced_deploy_is_recorded_and_shown(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    alone = run_cli(repo, "deploy", "prod", "--force")
    assert alone.code == 2 and "--force needs --reason" in alone.stderr

    run = run_cli(repo, "deploy", "prod", "--force", "--reason", "hotfix for INC-9")
    assert run.code == 0, run.text()
    entry = api.releases(Workspace.open(repo), "prod")[-1]
    assert (entry.outcome, entry.git_sha, entry.who) == ("succeeded", sha, "Test User <test@example.com>")
    assert entry.forced["reason"] == "hotfix for INC-9" and entry.forced["commit"] == sha
    assert entry.forced["branch"] == "prod" and entry.forced["branch_head"] is None

    [prod] = [s for s in api.status(Workspace.open(repo)) if s.env == "prod"]
    missing = f"branch prod does not exist, release 1 serves {sha[:12]} (deployed without a promotion)"
    assert prod.git_drift == (missing,)
    assert prod.forced["reason"] == "hotfix for INC-9"
    status = run_cli(repo, "status")
    assert status.code == 0, status.text()
    said = " ".join(status.stdout.split())
    assert f"forced deploy of {sha[:7]} by Test User: hotfix for INC-9" in said
    assert "branch prod does not exist" in said


def test_a_clone_with_only_the_remotes_copy_of_the_branch_takes_its_head(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin", FILES)
    promoted = branch_here(origin, "prod")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))  # a CI runner: main, and origin/prod
    assert git(clone, "branch", "--list", "prod") == ""
    git(clone, "config", "user.name", "CI")
    git(clone, "config", "user.email", "ci@example.com")
    prod = Workspace.open(clone).config.environment("prod")
    assert unpromoted(GitRepo(clone), prod, promoted) is None
    write_files(clone, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    problem = unpromoted(GitRepo(clone), prod, commit(clone, "v2"))
    assert problem is not None and f"branch prod is at {promoted[:12]}" in problem
