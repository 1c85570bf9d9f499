"""The git repository: the one module that imports gitpython."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import git

from releasekit.errors import GitError
from releasekit.gitops.blobs import CommitFiles
from releasekit.gitops.refs import BranchRefs
from releasekit.gitops.worktree import Worktrees


@dataclass(frozen=True)
class ChangedFile:
    path: str  # relative to the repository root, POSIX
    deleted: bool = False  # gone from the working tree: nothing there to lint or build


class GitRepo(BranchRefs, CommitFiles, Worktrees):
    """The one way releasekit reaches a git repository: opened once, here. Branch and tag
    moves (gitops.refs), files at a commit (gitops.blobs) and temporary worktrees
    (gitops.worktree) are its methods too. Only the hooks run git as a subprocess."""

    def __init__(self, path: Path) -> None:
        try:
            self._repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(
                f"{path} is not inside a git repository",
                hint="releasekit records the commit it deploys: run `git init` and commit your project",
            ) from None
        self.root = Path(self._repo.working_tree_dir or path).resolve()

    @classmethod
    def create(cls, path: Path, *, branch: str = "main") -> GitRepo:
        git.Repo.init(path, initial_branch=branch)
        return cls(path)

    def head_sha(self) -> str:
        try:
            return str(self._repo.head.commit.hexsha)
        except ValueError:
            raise GitError(
                f"the repository at {self.root} has no commits yet",
                hint="commit the dbt project first: git add -A && git commit -m 'dbt project'",
            ) from None

    def dirty_files(self, under: Path) -> list[tuple[str, bool]]:
        """Changed, staged and untracked (not ignored) files below `under`, repo-relative,
        each with whether it is untracked."""
        prefix = under.resolve().relative_to(self.root).as_posix()
        scope = [] if prefix == "." else ["--", prefix]
        lines = self._repo.git.status("--porcelain", "-uall", *scope).splitlines()
        found = {
            line[3:].split(" -> ")[-1].strip('"'): line.startswith("??") for line in lines if line.strip()
        }
        return sorted(found.items())

    def changed_since(self, sha: str) -> list[ChangedFile]:
        """Files that differ from the merge base of `sha` and HEAD: what this branch changed
        since it forked from `sha`'s history, committed or not (staged, unstaged, untracked
        but not ignored). Sorted by path; a rename is its old path deleted plus its new one."""
        base = self.merge_base(sha)
        diff = self._repo.git.diff("--name-status", "-z", "--no-renames", "--no-ext-diff", base, "--")
        fields = diff.split("\0")
        found = {
            path: status == "D" for status, path in zip(fields[0::2], fields[1::2], strict=False) if path
        }
        untracked = self._repo.git.ls_files("--others", "--exclude-standard", "-z").split("\0")
        found.update(dict.fromkeys(filter(None, untracked), False))
        return [ChangedFile(path, deleted) for path, deleted in sorted(found.items())]

    def merge_base(self, sha: str) -> str:
        """The newest commit both `sha` and HEAD descend from."""
        if not sha or sha.startswith("-") or not self._ref_exists(f"{sha}^{{commit}}"):
            raise GitError(
                f"commit {sha!r} is not in the repository at {self.root}", hint=self._fetch_hint(sha)
            )
        self.head_sha()
        try:
            return str(self._repo.git.merge_base(sha, "HEAD"))
        except git.GitCommandError:
            raise GitError(
                f"commit {sha[:12]} and HEAD share no history in {self.root}",
                hint="fetch the history that joins them: git fetch --unshallow origin (in CI, check out "
                "with full history, e.g. actions/checkout's fetch-depth: 0)"
                if self._is_shallow()
                else "compare against a commit of this repository's history",
            ) from None

    def _fetch_hint(self, sha: str) -> str:
        hint = f"fetch it: git fetch origin {sha}"
        if self._is_shallow():
            hint += (
                " (this clone is shallow: git fetch --unshallow origin, or in CI check out with full history)"
            )
        return hint

    def _is_shallow(self) -> bool:
        return str(self._repo.git.rev_parse("--is-shallow-repository")).strip() == "true"

    def user(self) -> str:
        reader = self._repo.config_reader()
        name = reader.get_value("user", "name", default="")
        email = reader.get_value("user", "email", default="")
        if name and email:
            return f"{name} <{email}>"
        return str(name or email or getpass.getuser())

    def branch_exists(self, name: str) -> bool:
        """The branch exists locally or as a remote-tracking branch of any remote (as of the
        last fetch: `git fetch --prune` first to see branches deleted on the remote)."""
        refs = [
            f"refs/heads/{name}",
            *(f"refs/remotes/{remote.name}/{name}" for remote in self._repo.remotes),
        ]
        return any(self._ref_exists(ref) for ref in refs)

    def _ref_exists(self, ref: str) -> bool:
        try:
            self._repo.git.rev_parse("--verify", "--quiet", ref, "--")
        except git.GitCommandError:
            return False
        return True

    def default_branch(self) -> str:
        """The branch the team merges into: the remote's HEAD (origin/HEAD), else the
        branch checked out now, else main."""
        try:
            ref = self._repo.git.symbolic_ref("--quiet", "--short", "refs/remotes/origin/HEAD")
            return str(ref).removeprefix("origin/")
        except git.GitCommandError:
            return self.current_branch() or "main"

    def current_branch(self) -> str | None:
        return None if self._repo.head.is_detached else str(self._repo.active_branch.name)

    def commit_all(self, message: str) -> str:
        self._repo.git.add("-A")
        self._repo.git.commit("-q", "-m", message)
        return self.head_sha()

    def switch(self, branch: str, *, create: bool = False) -> None:
        self._repo.git.switch(*(["-c"] if create else []), branch)

    def set_identity(self, name: str, email: str) -> None:
        """Set a repository-local identity (the quickstart's demo repo may have none)."""
        with self._repo.config_writer() as writer:
            writer.set_value("user", "name", name)
            writer.set_value("user", "email", email)
