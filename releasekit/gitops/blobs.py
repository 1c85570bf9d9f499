"""Files and trees as a commit holds them, read from git's object store: no checkout, no
worktree, nothing of the user's working tree read or written.

Paths are relative to the repository's top, POSIX (`environments/dev.yml`); `.` or `` is
the top itself.
"""

from __future__ import annotations

from pathlib import Path

import git

from releasekit.gitops.refs import _require_commit


class CommitFiles:
    """Files and trees as a commit holds them, of a GitRepo (mixed into it)."""

    _repo: git.Repo

    def tree_id(self, commit: str, path: str) -> str | None:
        """The id of the tree at `path` in `commit` (`git rev-parse <commit>:<path>`): equal ids,
        equal content of every file below. None when the commit has no folder there."""
        found = self._entry(commit, path)
        return str(found.hexsha) if isinstance(found, git.Tree) else None

    def read_at(self, commit: str, path: str) -> bytes | None:
        """The file at `path` as `commit` has it; None when it has no file there."""
        found = self._entry(commit, path)
        return bytes(found.data_stream.read()) if isinstance(found, git.Blob) else None

    def files_in(self, commit: str, folder: str) -> dict[str, bytes]:
        """The files directly in `folder` (not below it) as `commit` has them, by name; empty
        when the commit has no such folder."""
        found = self._entry(commit, folder)
        if not isinstance(found, git.Tree):
            return {}
        return {str(blob.name): bytes(blob.data_stream.read()) for blob in found.blobs}

    def _entry(self, commit: str, path: str) -> git.Tree | git.Blob | None:
        repo = self._repo
        tree = repo.commit(_require_commit(repo, commit)).tree
        parts = [part for part in Path(path).as_posix().split("/") if part not in ("", ".")]
        if ".." in parts:
            return None
        try:
            found = tree / "/".join(parts) if parts else tree
        except KeyError:
            return None
        return found if isinstance(found, git.Tree | git.Blob) else None
