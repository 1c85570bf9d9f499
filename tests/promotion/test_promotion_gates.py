"""Promotion gates a branch cannot bypass: rules read at their strictest from the
destination's deployed commit and the promoted commit, only a full check is a pass, and a
check counts for every commit whose dbt project has the content it verified (squash and
merge-commit flows). Real git, real dbt on DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_promote import FILES

from releasekit import api
from releasekit.api import Workspace
from tests.support.projects import BASE_FILES, commit, git, make_repo, write_files

pytestmark = pytest.mark.integration

STAGING = FILES["environments/staging.yml"]
CHECKED = STAGING + "promotion:\n  requires: checked\n"
REVENUE = BASE_FILES["models/revenue.sql"]


# A new model sqlfluff's default rules accept (the shop project's own files are not lint-clean).
def clean_model(n: int) -> dict[str, str]:
    return {f"models/extra_{n}.sql": f"select {n} as one\n"}


def checked_repo(tmp_path: Path, staging: str = CHECKED) -> Path:
    root = make_repo(tmp_path / "repo", {**FILES, "environments/staging.yml": staging})
    assert api.deploy(Workspace.open(root), "dev").ok
    return root


def check_branch(root: Path, branch: str, files: dict[str, str], **options: object) -> str:
    """Commit `files` on a new branch from main, check it, go back to main; its head."""
    git(root, "switch", "-q", "-c", branch, "main")
    write_files(root, files)
    head = commit(root, f"work on {branch}")
    report = api.check(Workspace.open(root), **options)  # type: ignore[arg-type]
    assert report.passed, report
    git(root, "switch", "-q", "main")
    return head


def deploy_dev(root: Path) -> None:
    assert api.deploy(Workspace.open(root), "dev").ok


def tree(root: Path, rev: str) -> str:
    return git(root, "rev-parse", f"{rev}^{{tree}}")


def test_a_check_with_only_is_no_pass_and_the_gate_says_why(tmp_path: Path) -> None:
    root = checked_repo(tmp_path)
    git(root, "switch", "-q", "-c", "feature", "main")  # the very commit dev serves
    sha = git(root, "rev-parse", "HEAD")
    assert api.check(Workspace.open(root), only=["logic"]).passed

    message = api.promote(Workspace.open(root), "staging").refusal
    assert f"the recorded check of {sha[:12]} ran only logic" in message
    assert "lint left out with --only" in message and "run a full `releasekit check`" in message
    assert api.releases(Workspace.open(root), "staging") == []

    assert api.check(Workspace.open(root)).passed
    promoted = api.promote(Workspace.open(root), "staging")
    assert promoted.deployed is not None and promoted.deployed.ok


def test_a_squash_merge_of_a_checked_branch_passes_the_gate(tmp_path: Path) -> None:
    root = checked_repo(tmp_path)
    head = check_branch(root, "feature/squash", clean_model(1))
    git(root, "merge", "-q", "--squash", "feature/squash")
    landed = commit(root, "Squashed: feature/squash")
    assert landed != head and tree(root, landed) == tree(root, head)
    deploy_dev(root)

    promoted = api.promote(Workspace.open(root), "staging")

    assert promoted.deployed is not None and promoted.deployed.ok and promoted.commit == landed
    [gate] = [g for g in promoted.gates if g.name == "checks"]
    assert gate.passed and f"passed for {head[:12]}" in gate.detail and "identical" in gate.detail


def test_a_merge_commit_passes_and_a_merge_that_adds_a_change_does_not(tmp_path: Path) -> None:
    root = checked_repo(tmp_path)
    check_branch(root, "feature/merged", clean_model(1))
    git(root, "merge", "-q", "--no-ff", "-m", "Merge feature/merged", "feature/merged")
    deploy_dev(root)
    promoted = api.promote(Workspace.open(root), "staging")
    assert promoted.deployed is not None and promoted.deployed.ok

    check_branch(root, "feature/more", clean_model(2))
    git(root, "merge", "-q", "--no-ff", "--no-commit", "feature/more")
    write_files(root, {"models/big_spenders.sql": BASE_FILES["models/big_spenders.sql"] + "-- unchecked\n"})
    landed = commit(root, "Merge feature/more, plus an unchecked change")
    deploy_dev(root)

    message = api.promote(Workspace.open(root), "staging").refusal
    assert f"requires a passing `releasekit check` of {landed[:12]}" in message
    assert "no check recorded" in message


def test_a_promoted_commit_cannot_lower_the_destinations_gates(tmp_path: Path) -> None:
    root = checked_repo(tmp_path, STAGING + "promotion:\n  requires: checked\n  approvals: 1\n")
    git(root, "switch", "-q", "-c", "first", "main")
    api.check(Workspace.open(root))
    git(root, "switch", "-q", "main")
    first = api.promote(Workspace.open(root), "staging", approvals=["Grace"])
    assert first.deployed is not None and first.deployed.ok  # staging's deployed commit: strict
    # main (and so the checkout, and the commit to promote) lowers both rules.
    write_files(root, {"environments/staging.yml": STAGING, "models/revenue.sql": REVENUE + "-- x\n"})
    commit(root, "staging: no approvals, no check")
    deploy_dev(root)

    message = api.promote(Workspace.open(root), "staging").refusal
    assert "staging needs 1 approval(s), has 0" in message
    assert "requires a passing `releasekit check`" in message
    assert (
        f"staging's rules: the strictest of your checkout, staging's deployed commit {first.commit[:12]}"
        in message
    )


def test_the_promoted_commits_stricter_gates_apply_whatever_the_checkout_says(tmp_path: Path) -> None:
    root = checked_repo(tmp_path, STAGING)
    write_files(root, {"environments/staging.yml": STAGING + "promotion:\n  approvals: 2\n"})
    commit(root, "staging: two approvals")
    deploy_dev(root)
    (root / "environments" / "staging.yml").write_text(
        STAGING + "promotion:\n  approvals: 0\n"
    )  # not committed

    refused = api.promote(Workspace.open(root), "staging", approvals=["Grace"])
    assert "staging needs 2 approval(s), has 1" in refused.refusal

    promoted = api.promote(Workspace.open(root), "staging", approvals=["Grace", "Alan"])
    assert promoted.deployed is not None and promoted.deployed.ok
