"""What the CI templates are filled in with, read from the project's configuration: the
promotion chain, when each environment refreshes, what `pip install` installs, and the
Python version.

Names and branches end up in YAML keys, GitHub expressions, GitLab rules and shell
commands. Environment names are already restricted by the loader; branches of declared
environments are held here to a plain set of characters, so the templates can use them
anywhere. (Pull-request branches are another matter: they never reach the templates, only
the CI's environment variables at run time.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from releasekit.ci import DEFAULT_PYTHON
from releasekit.ci.schedule import refresh_schedules
from releasekit.config.model import EnvironmentConfig, ProjectConfig
from releasekit.config.safe_yaml import load_yaml
from releasekit.errors import ConfigError

_PYTHON = re.compile(r"3\.\d{1,2}")
_PLAIN_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_EXTRAS = {"postgres": "postgres"}  # a dbt adapter type -> the releasekit extra it needs


@dataclass(frozen=True)
class Stage:
    """A declared environment as the templates see it."""

    name: str
    branch: str


@dataclass(frozen=True)
class Refresh:
    """When CI refreshes a declared environment."""

    stage: Stage
    cron: str  # five fields, UTC


@dataclass(frozen=True)
class CiContext:
    pip_spec: str  # what `pip install` installs in CI: releasekit[extras]==this version
    python_version: str
    first: Stage  # where merged work is deployed (the branch environments' base)
    targets: tuple[Stage, ...]  # environments promoted into, nearest to `first` first
    chain: str  # "dev → staging → prod"
    local_state: bool  # releasekit.yml keeps the state on this machine, not in a bucket
    refreshes: tuple[Refresh, ...]  # every deployed environment, in promotion order

    def variables(self) -> dict[str, Any]:
        """The names the templates use."""
        return {
            "pip_spec": self.pip_spec,
            "python_version": self.python_version,
            "first": self.first,
            "targets": self.targets,
            "chain": self.chain,
            "refreshes": self.refreshes,
        }


def ci_context(
    config: ProjectConfig,
    *,
    version: str,
    python_version: str,
    environ: Mapping[str, str],
    refresh_schedule: Sequence[str] = (),
) -> CiContext:
    """`refresh_schedule`: `CRON` for every environment, `ENV=CRON` for one (releasekit.ci.schedule)."""
    if not _PYTHON.fullmatch(python_version):
        raise ConfigError(
            f"--python {python_version!r} is not a Python version releasekit runs on",
            hint=f"name a minor version, for example --python {DEFAULT_PYTHON}",
        )
    first = config.environment(config.branches.base)
    levels = _levels(first, list(config.environments.values()))
    extras = sorted({_EXTRAS[kind] for kind in _adapter_types(config, environ) if kind in _EXTRAS})
    stages = [_stage(env, config.root) for env in [first, *(env for level in levels for env in level)]]
    crons = refresh_schedules([stage.name for stage in stages], refresh_schedule)
    return CiContext(
        pip_spec=f"releasekit{'[' + ','.join(extras) + ']' if extras else ''}=={version}",
        python_version=python_version,
        first=stages[0],
        targets=tuple(stages[1:]),
        chain=" → ".join([first.name, *(", ".join(env.name for env in level) for level in levels)]),
        local_state=config.state.url is None,
        refreshes=tuple(Refresh(stage, crons[stage.name]) for stage in stages),
    )


def _levels(
    first: EnvironmentConfig, environments: Sequence[EnvironmentConfig]
) -> list[list[EnvironmentConfig]]:
    """The environments promoted (directly or not) from `first`, by distance from it."""
    levels: list[list[EnvironmentConfig]] = []
    frontier = {first.name}
    while frontier:
        level = sorted((env for env in environments if env.promotes_from in frontier), key=lambda e: e.name)
        if level:
            levels.append(level)
        frontier = {env.name for env in level}
    return levels


def _stage(env: EnvironmentConfig, root: Path) -> Stage:
    where = _relative(env.source_file, root) if env.source_file else None
    if env.branch is None:
        raise ConfigError(
            f"environment {env.name!r} names no git branch, and CI deploys it from one",
            file=where,
            key="branch",
            hint="set `branch:` in its environment file (dev: the branch pull requests merge into)",
        )
    if not _PLAIN_BRANCH.fullmatch(env.branch) or ".." in env.branch:
        raise ConfigError(
            f"branch {env.branch!r} of environment {env.name!r} has characters the CI templates "
            "do not quote everywhere",
            file=where,
            key="branch",
            hint="use letters, digits and . _ / - for the branches of declared environments",
        )
    return Stage(env.name, env.branch)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _adapter_types(config: ProjectConfig, environ: Mapping[str, str]) -> set[str]:
    """The adapter types of every target in the project's dbt profile, read without
    rendering it: the secrets other environments read with env_var() need not be set where
    `releasekit ci init` runs. A profile that cannot be found names no type."""
    project = _read_yaml(config.dbt_project_dir / "dbt_project.yml")
    name = config.profile or project.get("profile")
    profiles = _read_yaml(_profiles_dir(config, environ) / "profiles.yml")
    entry = profiles.get(name) if isinstance(name, str) else None
    outputs = entry.get("outputs") if isinstance(entry, Mapping) else None
    if not isinstance(outputs, Mapping):
        return set()
    return {str(output.get("type")) for output in outputs.values() if isinstance(output, Mapping)}


def _profiles_dir(config: ProjectConfig, environ: Mapping[str, str]) -> Path:
    # dbt's own lookup: the configured folder, DBT_PROFILES_DIR, the project folder, ~/.dbt.
    if config.profiles_dir is not None:
        return config.profiles_dir
    if environ.get("DBT_PROFILES_DIR"):
        return Path(environ["DBT_PROFILES_DIR"])
    beside = config.dbt_project_dir
    return beside if (beside / "profiles.yml").is_file() else Path.home() / ".dbt"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return dict(loaded) if isinstance(loaded, Mapping) else {}
