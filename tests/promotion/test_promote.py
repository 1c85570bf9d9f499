"""`releasekit promote` and `sync` end to end: real git repositories (with a bare remote),
real dbt on DuckDB. dev follows main; staging (same parameters) is promoted from dev; prod
(min_amount differs) from staging."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.errors import GitError
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, ENV_FILES, commit, git, make_repo, write_files
from tests.support.warehouse_reads import sql, views

pytestmark = pytest.mark.integration

FILES = {
    "environments/staging.yml": "version: 1\nschema: staging\nbranch: staging\npromotes_from: dev\n",
    "environments/prod.yml": ENV_FILES["environments/prod.yml"].replace(
        "promotes_from: dev", "promotes_from: staging"
    ),
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    assert api.deploy(Workspace.open(root), "dev").ok
    return root


CUSTOMER_TEST = (
    "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: name\n"
    "        data_tests: [not_null]\n"
)


def head(root: Path, ref: str) -> str:
    return git(root, "rev-parse", ref).strip()


def test_promoting_with_equal_parameters_builds_nothing_and_serves_the_tested_tables(repo: Path) -> None:
    dev_sha = head(repo, "main")
    # The user's checkout: on main, with uncommitted work a promotion must not touch.
    (repo / "notes.txt").write_text("mine\n")
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- wip\n"})
    commit_after = commit(repo, "not deployed yet")  # main moves on; dev still serves dev_sha
    (repo / "models" / "revenue.sql").write_text("select 1 as unsaved\n")
    status_before = git(repo, "status", "--porcelain")

    result = api.promote(Workspace.open(repo), "staging")

    assert result.commit == dev_sha != commit_after  # what dev serves, not main's head
    assert (result.branch, result.branch_update) == ("staging", "created") and head(
        repo, "staging"
    ) == dev_sha
    deployed = result.deployed
    assert deployed is not None and deployed.outcome == "succeeded"
    assert deployed.plan.builds == () and deployed.results == ()  # nothing built, dbt never ran
    assert views(repo, "staging") == views(repo, "dev")  # the very tables dev tested
    assert result.tag == "release/staging/1" and head(repo, "release/staging/1^{commit}") == dev_sha
    entry = api.releases(Workspace.open(repo), "staging")[-1]
    assert entry.promotion["from"] == "dev" and entry.promotion["branch_update"] == "created"
    assert entry.promotion["gates"] == {
        "order": "passed",
        "checks": "passed",
        "approvals": "passed",
        "drift": "passed",
    }
    assert git(repo, "status", "--porcelain") == status_before and head(repo, "HEAD") == commit_after
    assert (repo / "models" / "revenue.sql").read_text() == "select 1 as unsaved\n"

    again = api.promote(Workspace.open(repo), "staging")  # nothing new to promote
    assert again.branch_update == "up-to-date" and again.deployed is not None
    assert again.deployed.outcome == "noop" and again.tag == "release/staging/1"  # kept, not moved
    assert {s.reasons for s in deployed.plan.steps} == {("built by dev",)}


def test_a_version_whose_new_tests_dev_ran_is_promoted_without_running_them_again(repo: Path) -> None:
    assert api.promote(Workspace.open(repo), "staging").deployed is not None
    git(repo, "switch", "-q", "main")
    write_files(repo, {"models/customers.yml": CUSTOMER_TEST})
    commit(repo, "customers: names are never null")
    dev = api.deploy(Workspace.open(repo), "dev")
    assert [(s.name, s.action) for s in dev.plan.retests] == [("customers", "test")]

    promoted = api.promote(Workspace.open(repo), "staging")

    deployed = promoted.deployed
    assert deployed is not None and deployed.outcome == "succeeded"
    [customers] = [s for s in deployed.plan.steps if s.name == "customers"]
    assert (customers.action, customers.reasons) == ("reuse", ("tests verified by dev",))
    assert deployed.results == ()  # dev ran them on this very relation: dbt never started


def test_different_parameters_rebuild_only_their_readers_and_prod_follows_staging(repo: Path) -> None:
    api.promote(Workspace.open(repo), "staging")
    result = api.promote(Workspace.open(repo), "prod")
    assert result.deployed is not None and result.deployed.ok
    built = {step.name for step in result.deployed.plan.builds}
    assert built == {"orders", "revenue", "big_spenders"}  # min_amount's reader and descendants
    assert head(repo, "prod") == head(repo, "staging")
    assert sql(repo, "select count(*) from prod.orders") != sql(repo, "select count(*) from staging.orders")


def test_gates_refuse_with_the_reason_and_change_nothing(repo: Path) -> None:
    workspace = Workspace.open(repo)
    refused = api.promote(workspace, "prod", src="dev")
    assert refused.refused and "prod is promoted from staging, not dev" in refused.refusal
    assert refused.deployed is None and [g.name for g in refused.gates if not g.passed] == ["order"]
    write_files(
        repo,
        {
            "environments/staging.yml": FILES["environments/staging.yml"]
            + "promotion:\n  approvals: 1\n  self_approval: false\n  requires: checked\n"
        },
    )
    commit(repo, "staging needs an approval and a check")
    message = api.promote(Workspace.open(repo), "staging", approvals=["Test User"]).refusal
    assert "needs 1 approval(s), has 0" in message and "cannot approve their own promotion" in message
    assert "requires a passing `releasekit check`" in message
    assert (
        git(repo, "branch", "--list", "staging") == "" and api.releases(Workspace.open(repo), "staging") == []
    )

    run = run_cli(repo, "promote", "staging", "--approve", "Grace")
    assert run.code == 1 and "error: promotion of dev release 1 to staging refused" in run.stderr
    assert "gate" not in run.stdout  # without --dry-run, only the refusal is said, as an error


def test_drift_refuses_unless_forced_with_a_reason_which_is_recorded(repo: Path) -> None:
    api.promote(Workspace.open(repo), "staging")
    sql(repo, "drop view staging.revenue")
    drifted = api.promote(Workspace.open(repo), "staging")
    assert drifted.refused and "missing view" in drifted.refusal and drifted.deployed is None
    forced = api.promote(
        Workspace.open(repo), "staging", force=True, reason="revenue dropped by hand in INC-7"
    )
    assert forced.deployed is not None and forced.deployed.ok
    assert "revenue" in views(repo, "staging")
    entry = api.releases(Workspace.open(repo), "staging")[-1]
    assert entry.promotion["gates"]["drift"] == "forced"
    assert entry.promotion["forced_because"] == "revenue dropped by hand in INC-7"


def test_dry_run_shows_the_plan_and_changes_nothing(repo: Path) -> None:
    run = run_cli(repo, "promote", "staging", "--dry-run")
    assert run.code == 0, run.text()
    assert "Dry run" in run.stdout and "branch staging: created" in run.stdout and "to reuse" in run.stdout
    assert (
        git(repo, "branch", "--list", "staging") == "" and api.releases(Workspace.open(repo), "staging") == []
    )


def test_a_refused_dry_run_shows_the_failing_gate_beside_the_plan_and_exits_1(repo: Path) -> None:
    # A refusal exits 1 with or without --dry-run (it always has); the dry run shows the
    # gates, the refused one among them, and the plan first, then says why on stderr.
    refs = git(repo, "for-each-ref")
    run = run_cli(repo, "promote", "prod", "--from", "dev", "--dry-run")
    assert run.code == 1, run.text()
    assert re.search(r"order +refused +prod is promoted from staging, not dev", run.stdout), run.text()
    assert re.search(r"checks +passed", run.stdout) and "branch prod:" in run.stdout
    assert "Dry run:" in run.stdout and "Past its gates, the deploy would do this:" in run.stdout
    assert "error: promotion of dev release 1 to prod refused; nothing changed" in run.stderr
    assert "order: prod is promoted from staging, not dev" in run.stderr
    assert git(repo, "for-each-ref") == refs and api.releases(Workspace.open(repo), "prod") == []


def test_a_diverged_branch_is_refused_fast_forward_only(repo: Path) -> None:
    git(repo, "branch", "staging", "main~0")
    git(repo, "switch", "-q", "staging")
    write_files(repo, {"README.md": "hotfix by hand\n"})
    commit(repo, "hotfix on staging")
    git(repo, "switch", "-q", "main")
    staging_head = head(repo, "staging")
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    commit(repo, "v2")
    assert api.deploy(Workspace.open(repo), "dev").ok
    with pytest.raises(GitError, match="diverged"):
        api.promote(Workspace.open(repo), "staging")
    assert head(repo, "staging") == staging_head and api.releases(Workspace.open(repo), "staging") == []


def test_branch_and_tag_are_pushed_to_the_remote(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    result = api.promote(Workspace.open(repo), "staging")
    assert result.remote == "origin" and result.pushed == (
        "refs/heads/staging",
        "refs/tags/release/staging/1",
    )
    assert git(remote, "rev-parse", "refs/heads/staging").strip() == result.commit
    assert git(remote, "rev-parse", "release/staging/1^{commit}").strip() == result.commit


def test_sync_deploys_a_branch_moved_by_hand_once(repo: Path) -> None:
    api.promote(Workspace.open(repo), "staging")
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    v2 = commit(repo, "v2")
    git(repo, "branch", "-f", "staging", v2)  # someone merged by hand
    [staging] = [s for s in api.status(Workspace.open(repo)) if s.env == "staging"]
    assert staging.branch_head == v2 and staging.git_drift and not staging.warehouse_drift

    synced = api.sync(Workspace.open(repo), "staging")

    assert synced.changed and synced.head == v2 and synced.deployed is not None
    assert {step.name for step in synced.deployed.plan.builds} == {"revenue", "big_spenders"}
    again = api.sync(Workspace.open(repo), "staging")
    assert not again.changed and again.deployed is None
    [staging] = [s for s in api.status(Workspace.open(repo)) if s.env == "staging"]
    assert not staging.git_drift


def test_merge_mode_merges_a_diverged_branch_and_deploys_the_merge(repo: Path) -> None:
    merging = FILES["environments/staging.yml"] + "promotion:\n  merge: merge\n"
    write_files(repo, {"environments/staging.yml": merging})
    commit(repo, "staging merges")
    assert api.deploy(Workspace.open(repo), "dev").ok
    git(repo, "branch", "staging", "main")
    git(repo, "switch", "-q", "staging")
    write_files(repo, {"README.md": "hotfix made on staging\n"})
    hotfix = commit(repo, "hotfix on staging")
    git(repo, "switch", "-q", "main")
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    v2 = commit(repo, "v2")
    assert api.deploy(Workspace.open(repo), "dev").ok

    result = api.promote(Workspace.open(repo), "staging")

    assert result.branch_update == "merge" and result.deployed is not None and result.deployed.ok
    merge = head(repo, "staging")
    assert git(repo, "rev-list", "--parents", "-n", "1", merge).split()[1:] == [hotfix, v2]
    assert api.releases(Workspace.open(repo), "staging")[-1].git_sha == merge
