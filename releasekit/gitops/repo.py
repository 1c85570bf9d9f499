"""The git repository: the one module that imports gitpython."""

from __future__ import annotations

import getpass
from pathlib import Path

import git

from releasekit.errors import GitError


class GitRepo:
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
