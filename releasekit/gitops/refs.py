"""Branch and tag moves for a promotion, made without touching any checkout.

A promotion runs in the user's clone, where another branch may be checked out and work
may be uncommitted, so nothing here reads or writes a working tree, an index or HEAD:
merges are `git merge-tree --write-tree` (git 2.38+) plus `git commit-tree`, and refs move
by compare-and-swap (`git update-ref <ref> <new> <old>`), so a concurrent mover makes this
one fail instead of losing its update. A branch checked out in any worktree is refused:
moving it would leave that checkout's index and files out of step with its HEAD. Names
reach git as separate argv items, validated so that git never reads one as an option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

from releasekit.errors import (
    GitError,
    MergeConflictError,
    NotFastForwardError,
    PushRejectedError,
    RefMovedError,
)

MergeMode = Literal["ff-only", "merge"]
UpdateKind = Literal["created", "fast-forward", "merge", "up-to-date"]
Identity = tuple[str, str] | None  # (name, email); None: git's configured identity


@dataclass(frozen=True)
class BranchUpdate:
    branch: str
    old_sha: str | None  # None: the branch was created
    new_sha: str
    kind: UpdateKind


class BranchRefs:
    """Branch and tag moves of a GitRepo (mixed into it): the repository is opened once."""

    _repo: git.Repo
    root: Path

    def advance_branch(
        self,
        branch: str,
        commit: str,
        *,
        mode: MergeMode,
        message: str,
        author: Identity = None,
        expected_old: str | None = None,
    ) -> BranchUpdate:
        """Make `branch` contain `commit`: create it, fast-forward it, or (mode "merge") merge.

        `message` is the merge commit's message and the reflog entry. `author` (name, email)
        authors and commits the merge; without it git's configured identity does.
        `expected_old` is the branch head the caller decided on (None: read it now); the ref
        only moves if it still points there."""
        repo = self._repo
        _check_name(repo, "branch", branch)
        new = _require_commit(repo, commit)
        current = _resolve(repo, f"refs/heads/{branch}")
        old = current if expected_old is None else _require_commit(repo, expected_old)
        if old is not None and _is_ancestor(repo, new, old):
            if old != current:
                raise _moved(branch, old, current)
            return BranchUpdate(branch, old, old, "up-to-date")
        _refuse_checked_out(repo, branch)
        target, kind = _next_head(repo, branch, old, new, mode, message, author)
        _update_ref(repo, branch, target, old, message)
        return BranchUpdate(branch, old, target, kind)

    def branch_head(self, branch: str) -> str | None:
        """Where `branch` points: the local branch, else the remote's copy of it as of the last
        fetch (a CI runner's fresh clone has `origin/<branch>` and no local branch)."""
        repo = self._repo
        _check_name(repo, "branch", branch)
        local = _resolve(repo, f"refs/heads/{branch}")
        if local is not None:
            return local
        remote = self.remote_for(branch)
        return None if remote is None else _resolve(repo, f"refs/remotes/{remote}/{branch}")

    def catch_up_branch(self, branch: str) -> str | None:
        """Bring the local `branch` up to the remote's copy of it (as of the last fetch) before a
        promotion moves it: create it there when missing, fast-forward it when behind. Raises
        NotFastForwardError, changing nothing, when the two diverged. Returns the remote's sha
        when the local branch moved, else None."""
        repo = self._repo
        _check_name(repo, "branch", branch)
        remote = self.remote_for(branch)
        tracked = None if remote is None else _resolve(repo, f"refs/remotes/{remote}/{branch}")
        local = _resolve(repo, f"refs/heads/{branch}")
        if tracked is None or tracked == local or (local is not None and _is_ancestor(repo, tracked, local)):
            return None  # nothing on the remote, or the local branch already holds it all
        if local is not None and not _is_ancestor(repo, local, tracked):
            raise NotFastForwardError(
                f"branch {branch} ({local[:12]}) and {remote}/{branch} ({tracked[:12]}) diverged",
                hint=f"reconcile them first (git switch {branch} && git pull), then promote again",
            )
        _refuse_checked_out(repo, branch)
        _update_ref(repo, branch, tracked, local, f"releasekit: catch up with {remote}/{branch}")
        return tracked

    def restore_branch(self, update: BranchUpdate) -> None:
        """Undo `update` (say, its deploy failed): move the branch back, or delete it if the
        update created it; only if it still points where the update left it."""
        if update.kind == "up-to-date":
            return
        repo = self._repo
        _check_name(repo, "branch", update.branch)
        _refuse_checked_out(repo, update.branch)
        _update_ref(repo, update.branch, update.old_sha, update.new_sha, "releasekit: undo promotion")

    def tag_release(self, name: str, commit: str, message: str, *, tagger: Identity = None) -> None:
        """An annotated tag `name` at `commit`; already there at that commit is a no-op.
        `tagger` (name, email) signs it off; without it git's configured identity does."""
        repo = self._repo
        _check_name(repo, "tag", name)
        sha = _require_commit(repo, commit)
        tagged = _resolve(repo, f"refs/tags/{name}")
        if tagged is None:
            _git(repo, "tag", "-a", "-m", message, name, sha, env=_identity_env(tagger))
        elif tagged != sha:
            raise GitError(
                f"tag {name} already exists at commit {tagged[:12]}, not {sha[:12]}",
                hint="a release tag never moves: use a new release id, or delete the tag on purpose "
                f"(git tag -d {name}, and on the remote: git push <remote> :refs/tags/{name})",
            )

    def remote_for(self, branch: str) -> str | None:
        """Where `git push` would send `branch`: its pushRemote, remote.pushDefault, its
        upstream's remote, else `origin` if configured, else None."""
        repo = self._repo
        _check_name(repo, "branch", branch)
        remotes = _git(repo, "remote").split()
        for key in (f"branch.{branch}.pushRemote", "remote.pushDefault", f"branch.{branch}.remote"):
            status, value, _ = _run(repo, "config", "--get", key)
            if status == 0 and value.strip() in remotes:
                return value.strip()
        return "origin" if "origin" in remotes else None

    def push(self, remote: str, refs: Sequence[str]) -> None:
        """Push branch and tag refs (`refs/heads/x`, `refs/tags/y`) to the same names on
        `remote`, all or none (`--atomic`); no force, so a remote that moved on refuses."""
        repo = self._repo
        if remote.startswith("-") or remote not in _git(repo, "remote").split():
            raise GitError(f"{remote!r} is not a remote of {self.root}", hint="list them with: git remote -v")
        for ref in refs:
            _check_pushable(repo, ref)
        if not refs:
            return  # a bare `git push` would push whatever push.default says: not ours to decide
        status, out, err = _run(repo, "push", "--atomic", "--porcelain", remote, *(f"{r}:{r}" for r in refs))
        if status == 0:
            return
        retry = f"retry with: git push {remote} {' '.join(refs)}"
        rejected = [line.split("\t") for line in out.splitlines() if line.startswith("!")]
        if not rejected:
            raise GitError(f"could not push to {remote}: {err.strip()}", hint=f"check access, then {retry}")
        reasons = "; ".join(f"{f[1].split(':')[-1]} {f[2] if len(f) > 2 else ''}".strip() for f in rejected)
        raise PushRejectedError(
            f"{remote} rejected the push: {reasons}. The local branch and tag are already updated",
            hint=f"fetch {remote} and reconcile what moved there, then {retry}",
        )

    def is_ancestor(self, older: str, newer: str) -> bool:
        """`older` is `newer` or one of its ancestors."""
        repo = self._repo
        return _is_ancestor(repo, _require_commit(repo, older), _require_commit(repo, newer))

    def resolve(self, rev: str) -> str | None:
        """The full sha of the commit `rev` names, or None if the repository has no such commit."""
        return _resolve(self._repo, rev)


def _check_name(repo: git.Repo, kind: Literal["branch", "tag"], name: str) -> None:
    if not name.startswith("-") and name != "HEAD":  # git must never read a name as an option
        if kind == "branch":  # --branch expands @{-1}: only a literal name is valid
            status, out, _ = _run(repo, "check-ref-format", "--branch", name)
            valid = status == 0 and out.strip() == name
        else:
            valid = _run(repo, "check-ref-format", f"refs/tags/{name}")[0] == 0
        if valid:
            return
    raise GitError(
        f"{name!r} is not a valid {kind} name",
        hint=f"{kind} names cannot be HEAD, start with '-' or contain spaces, '..', '~', '^', ':', '?', '*', "
        "'[', '\\' or '@{' (see: git help check-ref-format)",
    )


def _check_pushable(repo: git.Repo, ref: str) -> None:
    kinds: dict[str, Literal["branch", "tag"]] = {"refs/heads/": "branch", "refs/tags/": "tag"}
    prefix = next((prefix for prefix in kinds if ref.startswith(prefix)), None)
    if prefix is None:
        raise GitError(
            f"cannot push {ref!r}", hint="push full branch or tag refs: refs/heads/<b>, refs/tags/<t>"
        )
    _check_name(repo, kinds[prefix], ref.removeprefix(prefix))


def _run(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    command = [repo.git.GIT_PYTHON_GIT_EXECUTABLE, *args]
    status, out, err = repo.git.execute(
        command, with_exceptions=False, with_extended_output=True, shell=False, env=env
    )
    return int(status), str(out), str(err)


def _git(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None) -> str:
    status, out, err = _run(repo, *args, env=env)
    if status != 0:
        raise GitError(f"git {args[0]} failed in {repo.working_dir}: {err.strip()}")
    return out


def _resolve(repo: git.Repo, rev: str) -> str | None:
    if not rev or rev.startswith("-"):
        return None
    status, out, _ = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    return out.strip() if status == 0 else None


def _require_commit(repo: git.Repo, rev: str) -> str:
    sha = _resolve(repo, rev)
    if sha is None:
        raise GitError(
            f"commit {rev!r} is not in the repository at {repo.working_dir}",
            hint=f"fetch it (git fetch origin {rev}) or check the name",
        )
    return sha


def _is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
    status, _, err = _run(repo, "merge-base", "--is-ancestor", older, newer)
    if status > 1:
        raise GitError(f"could not compare {older[:12]} and {newer[:12]}: {err.strip()}")
    return status == 0


def _refuse_checked_out(repo: git.Repo, branch: str) -> None:
    worktree = None
    for line in _git(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            worktree = line.removeprefix("worktree ")
        elif line == f"branch refs/heads/{branch}":
            raise GitError(
                f"branch {branch} is checked out in {worktree}; moving it there would leave that "
                "checkout's files and index out of step with its HEAD",
                hint=f"switch that checkout to another branch (git -C {worktree} switch <other>) and "
                "promote again, or promote from CI",
            )


def _next_head(
    repo: git.Repo, branch: str, old: str | None, new: str, mode: MergeMode, message: str, author: Identity
) -> tuple[str, UpdateKind]:
    if old is None:
        return new, "created"
    if _is_ancestor(repo, old, new):
        return new, "fast-forward"
    if mode == "ff-only":
        raise NotFastForwardError(
            f"cannot fast-forward {branch} ({old[:12]}) to {new[:12]}: the branches diverged, "
            f"{branch} has commits that {new[:12]} does not",
            hint="allow a merge commit with `promotion: {merge: merge}` in the environment's file, or "
            f"reconcile by hand: merge {branch} into the source branch and promote again",
        )
    return _merge_commit(repo, branch, old, new, message, author), "merge"


def _merge_commit(repo: git.Repo, branch: str, old: str, new: str, message: str, author: Identity) -> str:
    status, out, err = _run(
        repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", old, new
    )
    if status > 1:
        raise GitError(
            f"could not merge {new[:12]} into {branch}: {err.strip()}",
            hint="merging needs git 2.38 or later (git merge-tree --write-tree) and shared history",
        )
    tree, *conflicts = [field for field in out.split("\0") if field]
    if status == 1:
        files = list(dict.fromkeys(conflicts))
        raise MergeConflictError(
            f"merging {new[:12]} into {branch} conflicts in: {', '.join(files)}",
            files=files,
            hint=f"merge {branch} into the source branch, resolve the conflicts there, and promote again",
        )
    env = _identity_env(author)
    status, out, err = _run(repo, "commit-tree", "-p", old, "-p", new, "-m", message, tree, env=env)
    if status != 0:
        raise GitError(
            f"could not create the merge commit for {branch}: {err.strip()}",
            hint="set an identity (git config user.name / user.email) or pass one as the author",
        )
    return out.strip()


def _identity_env(identity: Identity) -> dict[str, str] | None:
    if identity is None:
        return None
    name, email = identity  # the committer too: CI often has no configured identity
    return {
        f"GIT_{role}_{part}": value
        for role in ("AUTHOR", "COMMITTER")
        for part, value in (("NAME", name), ("EMAIL", email))
    }


def _update_ref(repo: git.Repo, branch: str, new: str | None, old: str | None, message: str) -> None:
    """Compare-and-swap: `old` None means the ref must not exist yet, `new` None deletes it."""
    ref, zero = f"refs/heads/{branch}", "0" * len(new or old or "")
    change = ["-d", ref, old or zero] if new is None else [ref, new, old or zero]
    status, _, err = _run(repo, "update-ref", "-m", message, *change)
    if status == 0:
        return
    found = _resolve(repo, f"refs/heads/{branch}")
    if found != old:
        raise _moved(branch, old, found)
    raise GitError(
        f"could not update branch {branch}: {err.strip()}",
        hint="another git command may hold the ref's lock: let it finish, then try again",
    )


def _moved(branch: str, expected: str | None, found: str | None) -> RefMovedError:
    expected, found = (sha[:12] if sha else "no branch" for sha in (expected, found))
    return RefMovedError(
        f"branch {branch} moved while releasekit was updating it: expected {expected}, found {found}",
        hint=f"another promotion or a push moved it: look at `git log {branch}`, then promote again",
    )
