"""releasekit's Python API: what the CLI and the tests call.

It never prints and never exits: results come back as typed values, and what could not
run raises a `releasekit.errors.ReleasekitError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releasekit.config.loader import find_root, load_config
from releasekit.config.model import EnvironmentConfig, ProjectConfig
from releasekit.config.scaffold import InitResult, init_project
from releasekit.dbtcore.profile import connection, profile_targets
from releasekit.dbtcore.session import DbtProject, DbtSettings, NodeCallback
from releasekit.engine.deploy import DeployResult, plan_deploy
from releasekit.engine.deploy import deploy as engine_deploy
from releasekit.engine.gc import GcResult, collect_garbage
from releasekit.engine.plan import Plan
from releasekit.engine.rollback import RollbackResult
from releasekit.engine.rollback import rollback as engine_rollback
from releasekit.engine.runtime import Target, live_entry
from releasekit.errors import DirtyWorktreeError, ProjectError
from releasekit.gitops.repo import GitRepo
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry
from releasekit.state.local import LocalStore
from releasekit.warehouse.base import ReleaseMarker

__all__ = [
    "DeployResult",
    "EnvironmentStatus",
    "GcResult",
    "InitResult",
    "NodeCallback",
    "Plan",
    "RollbackResult",
    "Workspace",
    "deploy",
    "gc",
    "init",
    "plan",
    "releases",
    "rollback",
    "status",
]


@dataclass(frozen=True)
class Workspace:
    """A repository with releasekit configured: config, git and state, loaded once."""

    config: ProjectConfig
    repo: GitRepo
    store: LocalStore
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
        return cls(config, GitRepo(root), LocalStore(config.state_path), environ)

    def target(
        self, env_name: str, *, on_node: NodeCallback | None = None, allow_dirty: bool = True
    ) -> Target:
        env = self.config.environment(env_name)
        settings = self.dbt_settings(env)
        return Target(
            env=env,
            physical_schema=self.config.physical_schema,
            store=self.store,
            connection=connection(settings),
            dbt=DbtProject(settings, on_node=on_node),
            git_sha=self._git_sha(allow_dirty),
            who=self.repo.user(),
            environ=self.environ,
        )

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

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.repo.root).as_posix()
        except ValueError:
            return str(path)


_DBT_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py", ".md", ".jinja", ".jinja2")


def _is_tool_output(path: str) -> bool:
    """Files that running dbt or a warehouse writes, not project changes: DuckDB files and
    dbt's anonymous-user id file (written beside profiles.yml)."""
    return path.endswith((".duckdb", ".duckdb.wal", ".db.wal")) or path.rsplit("/", 1)[-1] == ".user.yml"


def init(start: Path | None = None, *, force: bool = False) -> InitResult:
    repo = GitRepo((start or Path.cwd()).resolve())
    project_dir = _find_dbt_project(repo.root)
    targets = profile_targets(project_dir, None)
    return init_project(
        repo.root,
        dbt_project_dir=project_dir,
        target_names=targets.names,
        default_target=targets.default,
        force=force,
    )


def _find_dbt_project(root: Path) -> Path:
    if (root / "dbt_project.yml").exists():
        return root
    found = sorted(p.parent for p in root.glob("*/dbt_project.yml"))
    if len(found) == 1:
        return found[0]
    raise ProjectError(
        f"no single dbt project found in {root} (looked for dbt_project.yml at the top and one level down)",
        hint="run `releasekit init` at the root of a git repository that holds one dbt project",
    )


def plan(workspace: Workspace, env: str) -> Plan:
    return plan_deploy(workspace.target(env))


def deploy(
    workspace: Workspace, env: str, *, allow_dirty: bool = False, on_node: NodeCallback | None = None
) -> DeployResult:
    return engine_deploy(workspace.target(env, on_node=on_node, allow_dirty=allow_dirty))


def rollback(workspace: Workspace, env: str, *, to: int | None = None) -> RollbackResult:
    return engine_rollback(_light_target(workspace, env), to)


def releases(workspace: Workspace, env: str) -> list[LedgerEntry]:
    workspace.config.environment(env)  # a clear error for an unknown name
    return workspace.store.entries(env)


@dataclass(frozen=True)
class EnvironmentStatus:
    env: str
    schema: str
    live: LedgerEntry | None
    marker: ReleaseMarker | None
    releases: int

    @property
    def drift(self) -> bool:
        live_id = self.live.release_id if self.live else None
        marker_id = self.marker.release_id if self.marker else None
        return live_id != marker_id


def status(workspace: Workspace) -> list[EnvironmentStatus]:
    result = []
    for name in sorted(workspace.config.environments):
        target = _light_target(workspace, name)
        entries = workspace.store.entries(name)
        with target.warehouse() as warehouse:
            marker = warehouse.read_marker(target.env.schema)
        count = len(ledger.successful_release_ids(entries))
        result.append(EnvironmentStatus(name, target.env.schema, live_entry(entries), marker, count))
    return result


def gc(workspace: Workspace, *, dry_run: bool = False) -> list[GcResult]:
    targets = [_light_target(workspace, name) for name in sorted(workspace.config.environments)]
    return collect_garbage(targets, dry_run=dry_run)


def _light_target(workspace: Workspace, env_name: str) -> Target:
    """A target for commands that build nothing: no dbt parse, no dirty check."""
    env = workspace.config.environment(env_name)
    return Target(
        env=env,
        physical_schema=workspace.config.physical_schema,
        store=workspace.store,
        connection=connection(workspace.dbt_settings(env)),
        who=workspace.repo.user(),
        environ=workspace.environ,
    )
