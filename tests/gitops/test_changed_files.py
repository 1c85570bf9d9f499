"""GitRepo.changed_since in real repositories: what a branch changed since it forked from a
commit, committed or not, and clear errors for commits the clone does not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import GitError
from releasekit.gitops.repo import ChangedFile, GitRepo
from tests.support.projects import commit, git, make_repo, write_files


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "shop")


def changed(root: Path, sha: str) -> dict[str, bool]:
    return {c.path: c.deleted for c in GitRepo(root).changed_since(sha)}


def test_nothing_changed_since_head(repo: Path) -> None:
    assert GitRepo(repo).changed_since(git(repo, "rev-parse", "HEAD")) == []


def test_committed_staged_unstaged_and_untracked_changes_all_count(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "-c", "feature")
    write_files(repo, {"models/orders.sql": "select 1 as id\n"})
    commit(repo, "committed change")
    write_files(repo, {"models/revenue.sql": "select 2 as id\n", "models/new_staged.sql": "select 3\n"})
    git(repo, "add", "models/new_staged.sql")  # staged new file; revenue.sql stays unstaged
    write_files(repo, {"models/untracked.sql": "select 4\n", "target/ignored.sql": "select 5\n"})

    assert changed(repo, base) == {
        "models/new_staged.sql": False,
        "models/orders.sql": False,
        "models/revenue.sql": False,
        "models/untracked.sql": False,
    }


def test_deleted_and_renamed_files_are_flagged(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "models/revenue.sql", "models/revenue_v2.sql")
    commit(repo, "rename")
    (repo / "models" / "big_spenders.sql").unlink()  # deleted, not even staged

    result = GitRepo(repo).changed_since(base)

    assert result == [
        ChangedFile("models/big_spenders.sql", deleted=True),
        ChangedFile("models/revenue.sql", deleted=True),
        ChangedFile("models/revenue_v2.sql", deleted=False),
    ]


def test_changes_on_the_base_branch_after_the_fork_do_not_count(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    write_files(repo, {"models/orders.sql": "select 1 as id\n"})
    commit(repo, "branch change")
    git(repo, "switch", "-q", "main")
    write_files(repo, {"models/customers.sql": "select 9 as customer_id\n"})
    main_sha = commit(repo, "main moved on")
    git(repo, "switch", "-q", "feature")

    # The base environment deployed main's newest commit; the branch forked before it.
    assert changed(repo, main_sha) == {"models/orders.sql": False}


def test_paths_are_repo_relative_posix_even_with_spaces_and_unicode(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    write_files(repo, {"models/sub dir/café orders.sql": "select 1\n"})
    commit(repo, "odd names")

    assert changed(repo, base) == {"models/sub dir/café orders.sql": False}


def test_works_from_a_subfolder_of_the_repository(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    write_files(repo, {"models/orders.sql": "select 1 as id\n"})

    assert [c.path for c in GitRepo(repo / "models").changed_since(base)] == ["models/orders.sql"]


def test_unknown_commit_names_the_fetch(repo: Path) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError) as raised:
        GitRepo(repo).changed_since(missing)
    assert missing in raised.value.message
    assert raised.value.hint == f"fetch it: git fetch origin {missing}"


def test_unknown_commit_in_a_shallow_clone_says_so(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    write_files(repo, {"models/orders.sql": "select 1 as id\n"})
    commit(repo, "second")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", repo.as_uri(), str(clone))

    with pytest.raises(GitError) as raised:
        GitRepo(clone).changed_since(first)
    assert f"git fetch origin {first}" in str(raised.value.hint)
    assert "shallow" in str(raised.value.hint) and "--unshallow" in str(raised.value.hint)


def test_commit_with_no_shared_history_is_an_error(repo: Path) -> None:
    git(repo, "switch", "-q", "--orphan", "unrelated")
    write_files(repo, {"other.sql": "select 1\n"})
    orphan = commit(repo, "unrelated root")
    git(repo, "switch", "-q", "main")

    with pytest.raises(GitError, match="share no history"):
        GitRepo(repo).changed_since(orphan)


@pytest.mark.parametrize("sha", ["", "--output=/tmp/x", "-p"])
def test_option_like_or_empty_shas_are_refused(repo: Path, sha: str) -> None:
    with pytest.raises(GitError, match="is not in the repository"):
        GitRepo(repo).changed_since(sha)
