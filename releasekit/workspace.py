"""A repository with releasekit configured: config, git and state, loaded once, and the
one place environment names are resolved (declared environments, then branch ones)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releasekit.config.loader import find_root, load_config
from releasekit.config.model import Connection, EnvironmentConfig, ProjectConfig
from releasekit.dbtcore.profile import connection
from releasekit.dbtcore.session import DbtProject, DbtSettings, NodeCallback
from releasekit.engine.runtime import RunContext
from releasekit.environments.policy import project_content
from releasekit.errors import ConfigError, DirtyWorktreeError, GitError, NotFoundError
from releasekit.gitops.repo import GitRepo
from releasekit.state.base import BranchEnvironment, StateStore
from releasekit.state.open import open_store

# Untracked files of these kinds can change what dbt builds; others (notes, logs) cannot.
_DBT_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py", ".md", ".jinja", ".jinja2")


@dataclass(frozen=True)
class Workspace:
    config: ProjectConfig
    repo: GitRepo
    store: StateStore
    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        start: Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Workspace:
        environ = dict(os.environ if environ is None else environ)
        root = find_root((start or Path.cwd()).resolve())
        config = load_config(root, environ=environ, overrides=overrides)
        return cls(config, GitRepo(root), open_store(config.state, config.state_path), environ)

    # --- names -----------------------------------------------------------------------------

    def environment(self, name: str | None = None) -> EnvironmentConfig:
        """A declared environment or a registered branch environment, by name; with no name,
        the current branch's (a declared environment following it, else its branch one)."""
        name = self._current_environment_name() if name is None else name
        if name in self.config.environments:
            self.refuse_shadowed([name])
            return self.config.environments[name]
        record = self.store.branch(name)
        if record is not None:
            return self.branch_environment(record)
        declared = ", ".join(self.config.environments) or "none"
        raise NotFoundError(
            f"no environment named {name!r} (declared: {declared}; branch environments: "
            f"{', '.join(r.branch for r in self.store.branches()) or 'none'})",
            hint=f"declare it in environments/{name}.yml, or bring up a branch environment: "
            f"releasekit env up {name}",
        )

    def refuse_shadowed(self, names: Iterable[str] | None = None) -> None:
        """One name, one environment: a declared environment (default: every one) whose name
        a live branch environment already has is refused, naming both. Their ledgers live
        apart, but one name cannot mean both to `deploy`, `rollback` or `env gc`."""
        for name in self.config.environments if names is None else names:
            record = self.store.branch(name)
            if record is None:
                continue
            source = self.config.environments[name].source_file
            raise ConfigError(
                f"declares environment {name!r}, but a branch environment of that name is up "
                f"(branch {record.branch!r}, schema {record.schema!r}, brought up by {record.owner} "
                f"at {record.created_at})",
                file=source.name if source else f"environments/{name}.yml",
                hint=f"tear the branch environment down (releasekit env down {shlex.quote(name)}) "
                "or rename the environment file",
            )

    def is_declared(self, env: EnvironmentConfig) -> bool:
        return self.config.environments.get(env.name) == env

    def current_branch(self) -> str:
        branch = self.repo.current_branch()
        if branch is None:
            raise GitError("HEAD is detached: there is no current branch", hint="name the environment")
        return branch

    def _current_environment_name(self) -> str:
        branch = self.current_branch()
        for env in self.config.environments.values():
            if env.branch == branch:
                return env.name
        if self.store.branch(branch) is not None:
            return branch
        raise NotFoundError(
            f"branch {branch!r} has no environment",
            hint="bring one up with `releasekit env up`, or name the environment",
        )

    def branch_environment(self, record: BranchEnvironment) -> EnvironmentConfig:
        """A branch environment reads and builds like its base, in its own schema."""
        base = self.config.environment(record.base)
        return EnvironmentConfig(
            name=record.branch,
            schema=record.schema,
            target=base.target,
            vars=base.vars,
            branch=record.branch,
            retention=self.config.branches.retention,
            grants=self.config.branches.grants,
        )

    # --- run contexts ----------------------------------------------------------------------

    def run_context(
        self,
        env: EnvironmentConfig,
        *,
        builds: bool = False,
        checkout: tuple[Path, str] | None = None,
        on_node: NodeCallback | None = None,
        allow_dirty: bool = True,
    ) -> RunContext:
        """What one run against `env` works with; the one place a RunContext is made.

        By default, for commands that build nothing (rollback, gc, branch environments up
        and down, reading the warehouse): no dbt parse, no commit, no dirty check.
        builds: with the dbt project and HEAD's commit. Declared environments refuse a dirty
          tree unless `allow_dirty`; branch environments are for experiments and take one
          as it is.
        checkout: (tree, sha), another checkout of this repository (a temporary worktree at
          sha) to build from with `env`'s parameters; it implies `builds`.
        """
        settings = self.dbt_settings(env) if checkout is None else self.settings_at(env, checkout[0])
        run = RunContext(
            env=env,
            physical_schema=self.config.physical_schema,
            store=self.store,
            connection=self._connection(settings),
            who=self.repo.user(),
            environ=self.environ,
            data_mode=self.config.data_versions,
            alert_webhook=self.config.alert_webhook,
        )
        if checkout is not None:
            return dataclasses.replace(run, dbt=DbtProject(settings, on_node=on_node), git_sha=checkout[1])
        if not builds:
            return run
        git_sha = self._git_sha(allow_dirty or not self.is_declared(env))
        return dataclasses.replace(run, dbt=DbtProject(settings, on_node=on_node), git_sha=git_sha)

    def settings_at(self, env: EnvironmentConfig, tree: Path) -> DbtSettings:
        """`env`'s dbt settings for the project in `tree`. The profile stays the user's: one
        beside the project may be untracked, so absent from the tree. dbt's partial-parse
        state would carry paths of an earlier tree: the tree gets its own target folder."""
        settings = self.dbt_settings(env)
        project_dir = self.config.dbt_project_dir
        beside = project_dir if (project_dir / "profiles.yml").is_file() else None
        return dataclasses.replace(
            settings,
            project_dir=tree / project_dir.relative_to(self.repo.root),
            profiles_dir=self.config.profiles_dir or beside,
            working_dir=project_dir,
            target_path=tree.parent / f"{tree.name}-dbt-target",
        )

    def _connection(self, settings: DbtSettings) -> Connection:
        found = connection(settings)
        return dataclasses.replace(found, settings={**found.settings, **self.config.warehouse_settings})

    def dbt_settings(self, env: EnvironmentConfig) -> DbtSettings:
        params = json.dumps({"target": env.target, "vars": dict(env.vars)}, sort_keys=True, default=str)
        # One dbt target folder per parameter set keeps dbt's partial parsing warm:
        # dbt reparses everything whenever --vars or the target change.
        key = hashlib.sha256(params.encode()).hexdigest()[:12]
        state = self.config.state_path
        return DbtSettings(
            project_dir=self.config.dbt_project_dir,
            profiles_dir=self.config.profiles_dir,
            profile=self.config.profile,
            target=env.target,
            vars=dict(env.vars),
            target_path=state / "dbt" / key,
            log_path=state / "logs",
        )

    # --- the working tree ------------------------------------------------------------------

    def _git_sha(self, allow_dirty: bool) -> str:
        sha = self.repo.head_sha()
        dirty = self.dirty_files()
        if dirty and not allow_dirty:
            shown = "\n    ".join(dirty[:20]) + ("\n    ..." if len(dirty) > 20 else "")
            raise DirtyWorktreeError(
                f"the dbt project has uncommitted changes:\n    {shown}",
                hint="commit them (a release records the commit it deploys), "
                "or pass --allow-dirty for an experiment",
            )
        return f"{sha}-dirty" if dirty else sha

    def dirty_files(self) -> list[str]:
        """Uncommitted changes that could change what dbt builds: every edit to a tracked
        file, and untracked files of the kinds dbt reads (a stray notes.txt does not count)."""
        state = self._relative(self.config.state_path)
        return [
            path
            for path, untracked in self.repo.dirty_files(self.config.dbt_project_dir)
            if not _is_tool_output(path)
            and not path.startswith(f"{state}/")
            and (not untracked or path.endswith(_DBT_SOURCE_SUFFIXES))
        ]

    def content_of(self, commit: str) -> str | None:
        """What `commit` holds of the dbt project: the git tree id of its folder (equal ids,
        equal project, whatever the commit's sha). None for a dirty tree's `<sha>-dirty`."""
        return project_content(self.repo, self.config.dbt_project_dir, commit)

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.repo.root).as_posix()
        except ValueError:
            return str(path)


def _is_tool_output(path: str) -> bool:
    """Files that running dbt or a warehouse writes, not project changes: DuckDB files and
    dbt's anonymous-user id file (written beside profiles.yml)."""
    return path.endswith((".duckdb", ".duckdb.wal", ".db.wal")) or path.rsplit("/", 1)[-1] == ".user.yml"
