"""Temporary git worktrees: another commit's files, with the user's checkout untouched.

A worktree lives in `<tmp>/releasekit-worktree-<pid>-<random>/tree`. A run killed while it
held one leaves the folder and git's registration behind; the next run removes those whose
process is gone, so they never pile up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from releasekit.errors import GitError
from releasekit.processes import process_alive

_PREFIX = "releasekit-worktree-"
_HOLDER = re.compile(rf"^{_PREFIX}(?P<pid>\d+)-")


class Worktrees:
    """Temporary worktrees of a GitRepo (mixed into it)."""

    _repo: git.Repo

    @contextmanager
    def worktree_at(self, sha: str) -> Iterator[Path]:
        """A detached worktree of this repository holding commit `sha`, removed (and
        pruned from the repository's worktree list) afterwards, whatever happens inside."""
        repo = self._repo
        _remove_stale(repo)
        holder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
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


def _remove_stale(repo: git.Repo) -> None:
    """Worktrees (and empty holder folders) of releasekit runs that no longer run."""
    registered = [
        Path(line.removeprefix("worktree "))
        for line in repo.git.worktree("list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    dead = [path for path in registered if _dead_holder(path.parent)]
    for path in dead:
        # `git worktree add` locks a worktree while it checks it out; killed then, the lock
        # stays and `git worktree prune` would keep the registration forever.
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("unlock", str(path))
    holders = {path.parent for path in dead}
    temp = Path(tempfile.gettempdir())
    holders |= {path for path in temp.glob(f"{_PREFIX}*") if _dead_holder(path)}
    for holder in holders:
        shutil.rmtree(holder, ignore_errors=True)
    if holders:
        repo.git.worktree("prune")


def _dead_holder(path: Path) -> bool:
    match = _HOLDER.match(path.name)
    return match is not None and not process_alive(int(match.group("pid")))
