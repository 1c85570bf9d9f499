"""Temporary git worktrees: another commit's files, with the user's checkout untouched."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from releasekit.errors import GitError


@contextmanager
def worktree_at(root: Path, sha: str) -> Iterator[Path]:
    """A detached worktree of the repository at `root` holding commit `sha`, removed (and
    pruned from the repository's worktree list) afterwards, whatever happens inside."""
    repo = git.Repo(root)
    holder = Path(tempfile.mkdtemp(prefix="releasekit-worktree-"))
    path = holder / "tree"
    try:
        repo.git.worktree("add", "--detach", "--quiet", str(path), sha)
    except git.GitCommandError as exc:
        shutil.rmtree(holder, ignore_errors=True)
        raise GitError(
            f"could not check out commit {sha[:12]} in a temporary worktree: {exc.stderr.strip()}",
            hint=f"make sure the commit is in this clone (git fetch origin {sha})",
        ) from None
    try:
        yield path
    finally:
        shutil.rmtree(holder, ignore_errors=True)
        repo.git.worktree("prune")
