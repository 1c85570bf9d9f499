"""Temporary worktrees of promotions and syncs: what a killed run leaves is removed by the
next run, including a worktree git had locked while checking it out."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from releasekit.gitops.repo import GitRepo
from tests.support.projects import git, make_repo


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _registered(repo: Path) -> list[str]:
    lines = git(repo, "worktree", "list", "--porcelain").splitlines()
    return [line.removeprefix("worktree ") for line in lines if line.startswith("worktree ")][1:]


def test_a_worktree_a_killed_run_left_locked_is_removed_by_the_next_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    holder = Path(tempfile.mkdtemp(prefix=f"releasekit-worktree-{_dead_pid()}-"))
    left = holder / "tree"
    # What `git worktree add` leaves when killed while checking out: a locked registration.
    git(repo, "worktree", "add", "--detach", "--quiet", str(left), "HEAD")
    git(repo, "worktree", "lock", "--reason", "initializing", str(left))
    assert _registered(repo) == [str(left)]

    with GitRepo(repo).worktree_at("HEAD") as tree:
        assert (tree / "dbt_project.yml").is_file()
        assert _registered(repo) == [str(tree)]
    assert _registered(repo) == []
    assert not holder.exists()
