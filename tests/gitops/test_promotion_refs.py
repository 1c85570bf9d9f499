"""The git moves of a promotion in real repositories: creating, fast-forwarding and merging a
branch, release tags and pushes, all while the user's checkout (another branch, uncommitted
work) stays exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import (
    GitError,
    MergeConflictError,
    NotFastForwardError,
    PushRejectedError,
    RefMovedError,
)
from releasekit.gitops.refs import BranchUpdate
from releasekit.gitops.repo import GitRepo
from tests.support.projects import commit, git, make_repo, write_files

HOSTILE = ["feat/$(touch${IFS}canary)", "feat/`touch${IFS}canary`", "x;touch${IFS}canary", "a|b&c>d"]
INVALID = ["-f", "--upload-pack=touch canary", "a..b", "has space", "@{-1}", "x.lock", "a:b", "", "HEAD"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main is one commit ahead of prod; the user is on `feature` with work in progress."""
    root = make_repo(tmp_path / "shop")
    git(root, "branch", "prod")
    write_files(root, {"models/orders.sql": "select 1 as id\n"})
    commit(root, "dev change")
    git(root, "switch", "-q", "-c", "feature")
    write_files(root, {"models/revenue.sql": "-- half done\n", "models/new.sql": "select 7\n"})
    git(root, "add", "models/new.sql")
    write_files(root, {"notes.txt": "untracked\n"})
    return root


def user_state(repo: Path) -> tuple[str, ...]:
    return (
        git(repo, "status", "--porcelain", "-uall"),
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "diff", "--cached"),
        git(repo, "diff"),
        (repo / "models" / "revenue.sql").read_text(),
    )


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def commit_on(repo: Path, branch: str, files: dict[str, str], message: str) -> str:
    """A commit on `branch` made in a linked worktree, so the user's checkout is not touched."""
    tree = repo.parent / f"wt-{branch}"
    git(repo, "worktree", "add", "-q", str(tree), branch)
    write_files(tree, files)
    sha = commit(tree, message)
    git(repo, "worktree", "remove", str(tree))
    return sha


def sha(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev)


def test_a_missing_branch_is_created_at_the_commit(repo: Path) -> None:
    before = user_state(repo)
    main = sha(repo, "main")

    update = GitRepo(repo).advance_branch("staging", "main", mode="ff-only", message="promote")

    assert update == BranchUpdate("staging", None, main, "created")
    assert sha(repo, "staging") == main
    assert user_state(repo) == before


def test_a_branch_behind_the_commit_is_fast_forwarded(repo: Path) -> None:
    before = user_state(repo)
    old, main = sha(repo, "prod"), sha(repo, "main")

    update = GitRepo(repo).advance_branch("prod", main, mode="ff-only", message="promote")

    assert update == BranchUpdate("prod", old, main, "fast-forward")
    assert sha(repo, "prod") == main
    assert git(repo, "reflog", "-1", "--format=%gs", "prod") == "promote"
    assert user_state(repo) == before


@pytest.mark.parametrize("commit_rev", ["prod", "prod~0", "main~1"])
def test_a_branch_that_already_has_the_commit_is_up_to_date(repo: Path, commit_rev: str) -> None:
    commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "hotfix")
    head, before = sha(repo, "prod"), refs(repo)

    update = GitRepo(repo).advance_branch("prod", commit_rev, mode="merge", message="promote")

    assert update == BranchUpdate("prod", head, head, "up-to-date")
    assert refs(repo) == before


def test_a_diverged_branch_in_ff_only_mode_is_refused_and_nothing_changes(repo: Path) -> None:
    commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "hotfix")
    before, before_refs = user_state(repo), refs(repo)

    with pytest.raises(NotFastForwardError) as caught:
        GitRepo(repo).advance_branch("prod", "main", mode="ff-only", message="promote")

    assert "diverged" in caught.value.message
    assert caught.value.hint is not None and "promotion: {merge: merge}" in caught.value.hint
    assert (user_state(repo), refs(repo)) == (before, before_refs)


def test_a_diverged_branch_in_merge_mode_gets_a_merge_commit(repo: Path) -> None:
    hotfix = commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "hotfix")
    main, before = sha(repo, "main"), user_state(repo)

    update = GitRepo(repo).advance_branch(
        "prod", main, mode="merge", message="promote main into prod", author=("Bot", "bot@ci")
    )

    assert (update.old_sha, update.kind) == (hotfix, "merge")
    assert sha(repo, "prod") == update.new_sha
    assert git(repo, "log", "-1", "--format=%P|%an <%ae>|%cn|%s", "prod") == (
        f"{hotfix} {main}|Bot <bot@ci>|Bot|promote main into prod"
    )
    assert git(repo, "show", "prod:models/hotfix.sql") == "select 1"
    assert git(repo, "show", "prod:models/orders.sql") == "select 1 as id"
    assert user_state(repo) == before


def test_a_merge_without_an_author_uses_the_configured_identity(repo: Path) -> None:
    commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "hotfix")

    GitRepo(repo).advance_branch("prod", "main", mode="merge", message="promote")

    assert git(repo, "log", "-1", "--format=%an <%ae>", "prod") == "Test User <test@example.com>"


def test_a_merge_conflict_lists_the_files_and_changes_nothing(repo: Path) -> None:
    commit_on(repo, "prod", {"models/orders.sql": "select 2 as id\n", "a b.sql": "x\n"}, "hotfix")
    commit_on(repo, "main", {"a b.sql": "y\n"}, "clash")
    before, before_refs = user_state(repo), refs(repo)

    with pytest.raises(MergeConflictError) as caught:
        GitRepo(repo).advance_branch("prod", "main", mode="merge", message="promote")

    assert caught.value.files == ("a b.sql", "models/orders.sql")
    assert "models/orders.sql" in caught.value.message
    assert (user_state(repo), refs(repo)) == (before, before_refs)


def test_a_branch_moved_since_it_was_read_is_not_overwritten(repo: Path) -> None:
    stale = sha(repo, "prod")
    moved = commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "someone else's promotion")
    commit_on(repo, "main", {"models/more.sql": "select 3\n"}, "more")
    merged = GitRepo(repo).advance_branch("main", "prod", mode="merge", message="take the hotfix")

    with pytest.raises(RefMovedError) as caught:
        GitRepo(repo).advance_branch(
            "prod", merged.new_sha, mode="ff-only", message="promote", expected_old=stale
        )

    assert f"expected {stale[:12]}, found {moved[:12]}" in caught.value.message
    assert sha(repo, "prod") == moved


def test_an_up_to_date_answer_is_not_given_for_a_branch_that_moved(repo: Path) -> None:
    stale = sha(repo, "main")
    commit_on(repo, "main", {"models/more.sql": "select 3\n"}, "more")

    with pytest.raises(RefMovedError):
        GitRepo(repo).advance_branch("main", "main~1", mode="ff-only", message="promote", expected_old=stale)


def test_a_ref_lock_held_by_another_git_is_reported_as_such(repo: Path) -> None:
    old = sha(repo, "prod")
    (repo / ".git" / "refs" / "heads" / "prod.lock").write_text("")

    with pytest.raises(GitError) as caught:
        GitRepo(repo).advance_branch("prod", "main", mode="ff-only", message="promote")

    assert not isinstance(caught.value, RefMovedError)
    assert caught.value.hint is not None and "lock" in caught.value.hint
    assert sha(repo, "prod") == old


def test_the_checked_out_branch_is_refused(repo: Path) -> None:
    commit_on(repo, "main", {"models/more.sql": "select 3\n"}, "more")
    old, before = sha(repo, "feature"), user_state(repo)

    with pytest.raises(GitError) as caught:
        GitRepo(repo).advance_branch("feature", "main", mode="ff-only", message="promote")

    assert f"checked out in {repo}" in caught.value.message
    assert caught.value.hint is not None and "promote from CI" in caught.value.hint
    assert (sha(repo, "feature"), user_state(repo)) == (old, before)


def test_a_branch_checked_out_in_a_linked_worktree_is_refused(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "-q", str(tmp_path / "prod-tree"), "prod")

    with pytest.raises(GitError, match="prod-tree"):
        GitRepo(repo).advance_branch("prod", "main", mode="ff-only", message="promote")


def test_an_up_to_date_checked_out_branch_needs_no_move(repo: Path) -> None:
    head = sha(repo, "feature")
    update = GitRepo(repo).advance_branch("feature", "main", mode="ff-only", message="promote")
    assert update == BranchUpdate("feature", head, head, "up-to-date")


@pytest.mark.parametrize("branch", ["prod", "staging"])
def test_restoring_an_update_puts_the_branch_back(repo: Path, branch: str) -> None:
    commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "hotfix")
    before, before_refs = user_state(repo), refs(repo)
    update = GitRepo(repo).advance_branch(branch, "main", mode="merge", message="promote")
    assert update.kind == ("merge" if branch == "prod" else "created")

    GitRepo(repo).restore_branch(update)

    assert (user_state(repo), refs(repo)) == (before, before_refs)  # a created branch is gone again
    if branch == "prod":
        assert git(repo, "reflog", "-1", "--format=%gs", "prod") == "releasekit: undo promotion"


def test_restoring_an_up_to_date_update_changes_nothing(repo: Path) -> None:
    update = GitRepo(repo).advance_branch("main", "prod", mode="ff-only", message="promote")
    before = refs(repo)
    GitRepo(repo).restore_branch(update)
    assert refs(repo) == before


def test_a_branch_moved_after_the_update_is_not_restored(repo: Path) -> None:
    update = GitRepo(repo).advance_branch("prod", "main", mode="ff-only", message="promote")
    moved = commit_on(repo, "prod", {"models/hotfix.sql": "select 1\n"}, "hotfix")

    with pytest.raises(RefMovedError, match=f"found {moved[:12]}"):
        GitRepo(repo).restore_branch(update)

    assert sha(repo, "prod") == moved


def test_a_commit_the_repository_lacks_is_an_error(repo: Path) -> None:
    with pytest.raises(GitError, match="not in the repository") as caught:
        GitRepo(repo).advance_branch("prod", "f" * 40, mode="ff-only", message="promote")
    assert caught.value.hint is not None and "git fetch origin" in caught.value.hint


def test_a_tag_is_annotated_and_idempotent(repo: Path) -> None:
    main = sha(repo, "main")

    GitRepo(repo).tag_release("release/prod/r1", main, "release r1 to prod")
    GitRepo(repo).tag_release("release/prod/r1", "main", "release r1 to prod")

    assert git(repo, "cat-file", "-t", "refs/tags/release/prod/r1") == "tag"
    assert sha(repo, "release/prod/r1^{commit}") == main
    assert git(repo, "tag", "-l", "--format=%(contents:subject)", "release/prod/r1") == "release r1 to prod"


def test_a_tag_at_another_commit_is_an_error(repo: Path) -> None:
    GitRepo(repo).tag_release("release/prod/r1", "prod", "r1")

    with pytest.raises(GitError, match="already exists") as caught:
        GitRepo(repo).tag_release("release/prod/r1", "main", "r1")

    assert caught.value.hint is not None and "git tag -d release/prod/r1" in caught.value.hint
    assert sha(repo, "release/prod/r1^{commit}") == sha(repo, "prod")


def test_a_tag_can_name_its_tagger(repo: Path) -> None:
    GitRepo(repo).tag_release("r2", "main", "r2", tagger=("Bot", "bot@ci"))
    assert git(repo, "tag", "-l", "--format=%(taggername) %(taggeremail)", "r2") == "Bot <bot@ci>"


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main", "prod")
    return bare


def test_the_push_remote_is_the_upstream_else_origin(repo: Path, remote: Path, tmp_path: Path) -> None:
    assert GitRepo(repo).remote_for("prod") == "origin"
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "other.git"))
    git(repo, "remote", "add", "other", str(tmp_path / "other.git"))
    git(repo, "config", "branch.prod.remote", "other")
    assert GitRepo(repo).remote_for("prod") == "other"
    git(repo, "config", "branch.prod.pushRemote", "origin")
    assert GitRepo(repo).remote_for("prod") == "origin"


def test_no_remote_at_all_is_none(repo: Path) -> None:
    assert GitRepo(repo).remote_for("prod") is None


def test_a_branch_and_its_tag_arrive_on_the_remote(repo: Path, remote: Path) -> None:
    update = GitRepo(repo).advance_branch("prod", "main", mode="ff-only", message="promote")
    GitRepo(repo).tag_release("release/prod/r1", update.new_sha, "r1")

    GitRepo(repo).push("origin", ["refs/heads/prod", "refs/tags/release/prod/r1"])

    assert sha(remote, "prod") == update.new_sha
    assert sha(remote, "release/prod/r1^{commit}") == update.new_sha


def test_a_rejected_push_names_the_refs_and_how_to_retry(repo: Path, remote: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-clone"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "switch", "-q", "prod")
    write_files(other, {"models/hotfix.sql": "select 1\n"})
    theirs = commit(other, "pushed elsewhere")
    git(other, "push", "-q", "origin", "prod")
    GitRepo(repo).advance_branch("prod", "main", mode="ff-only", message="promote")
    GitRepo(repo).tag_release("release/prod/r1", "prod", "r1")

    with pytest.raises(PushRejectedError) as caught:
        GitRepo(repo).push("origin", ["refs/heads/prod", "refs/tags/release/prod/r1"])

    assert "refs/heads/prod" in caught.value.message
    assert "already updated" in caught.value.message
    assert caught.value.hint is not None
    assert "git push origin refs/heads/prod refs/tags/release/prod/r1" in caught.value.hint
    assert sha(remote, "prod") == theirs
    assert "release/prod/r1" not in git(remote, "tag", "-l")  # --atomic: all refs or none


def test_a_push_to_an_unknown_remote_or_of_a_bare_name_is_refused(repo: Path, remote: Path) -> None:
    with pytest.raises(GitError, match="not a remote"):
        GitRepo(repo).push("nowhere", ["refs/heads/prod"])
    with pytest.raises(GitError, match="not a remote"):
        GitRepo(repo).push("--receive-pack=touch canary", ["refs/heads/prod"])
    with pytest.raises(GitError, match="cannot push 'prod'"):
        GitRepo(repo).push("origin", ["prod"])
    assert not (repo / "canary").exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_but_valid_names_are_taken_literally(repo: Path, remote: Path, name: str) -> None:
    update = GitRepo(repo).advance_branch(name, "main", mode="ff-only", message="promote")
    GitRepo(repo).tag_release(name, "main", "r")
    GitRepo(repo).push("origin", [f"refs/heads/{name}", f"refs/tags/{name}"])

    assert update.kind == "created"
    assert git(repo, "for-each-ref", "--format=%(refname)", f"refs/heads/{name}") == f"refs/heads/{name}"
    assert git(remote, "for-each-ref", "--format=%(refname)", f"refs/tags/{name}") == f"refs/tags/{name}"
    assert not list(repo.parent.rglob("canary"))


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_are_refused_with_a_hint(repo: Path, remote: Path, name: str) -> None:
    before = refs(repo)
    for attempt in (
        lambda: GitRepo(repo).advance_branch(name, "main", mode="ff-only", message="promote"),
        lambda: GitRepo(repo).tag_release(name, "main", "r"),
        lambda: GitRepo(repo).push("origin", [f"refs/heads/{name}"]),
        lambda: GitRepo(repo).remote_for(name),
    ):
        with pytest.raises(GitError, match="is not a valid") as caught:
            attempt()
        assert caught.value.hint is not None and "check-ref-format" in caught.value.hint
    assert refs(repo) == before
    assert not list(repo.parent.rglob("canary"))


def test_resolve_and_is_ancestor(repo: Path) -> None:
    assert GitRepo(repo).resolve("main") == sha(repo, "main")
    assert GitRepo(repo).resolve("no-such-branch") is None
    assert GitRepo(repo).resolve("--all") is None
    assert GitRepo(repo).is_ancestor("prod", "main")
    assert GitRepo(repo).is_ancestor("main", "main")
    assert not GitRepo(repo).is_ancestor("main", "prod")


def test_outside_a_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        GitRepo(tmp_path).resolve("HEAD")
