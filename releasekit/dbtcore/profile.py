"""The dbt profile's target as a warehouse Connection, and the targets a profile offers."""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from releasekit.config.model import Connection
from releasekit.dbtcore.session import DbtSettings
from releasekit.errors import ProjectError


@dataclass(frozen=True)
class ProfileTargets:
    profile: str
    default: str
    names: tuple[str, ...]


def connection(settings: DbtSettings) -> Connection:
    """Render the profile the way dbt does (env_var() and all) and keep what a
    warehouse adapter needs to connect."""
    from dbt.config.runtime import load_profile
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))
    set_from_args(Namespace(profiles_dir=str(_profiles_dir(settings))), None)
    try:
        profile = load_profile(
            str(settings.project_dir), dict(settings.vars), settings.profile, settings.target, None
        )
    except Exception as exc:  # dbt raises several unrelated types here
        raise ProjectError(
            f"cannot load the dbt profile for {settings.project_dir}: {exc}",
            hint="check profiles.yml and the target named in environments/<env>.yml",
        ) from exc
    credentials = dict(profile.credentials.to_dict())
    if credentials.get("path") not in (None, ":memory:"):
        credentials["path"] = str((settings.project_dir / credentials["path"]).resolve())
    return Connection(
        type=profile.credentials.type, database=str(credentials.get("database", "")), settings=credentials
    )


def profile_targets(project_dir: Path, profiles_dir: Path | None) -> ProfileTargets:
    """The profile's target names, read without rendering (for `releasekit init`)."""
    project = _load_yaml(project_dir / "dbt_project.yml")
    name = str(project.get("profile") or "")
    profiles = _load_yaml((profiles_dir or _default_profiles_dir(project_dir)) / "profiles.yml")
    entry: Mapping[str, Any] = profiles.get(name) or {}
    outputs = tuple(sorted((entry.get("outputs") or {}).keys()))
    if not outputs:
        raise ProjectError(f"profile {name!r} has no targets in profiles.yml", hint="add an `outputs:` block")
    return ProfileTargets(profile=name, default=str(entry.get("target") or outputs[0]), names=outputs)


def _profiles_dir(settings: DbtSettings) -> Path:
    return settings.profiles_dir or _default_profiles_dir(settings.project_dir)


def _default_profiles_dir(project_dir: Path) -> Path:
    # dbt's own lookup: DBT_PROFILES_DIR, then the project folder, then ~/.dbt.
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"])
    return project_dir if (project_dir / "profiles.yml").exists() else Path.home() / ".dbt"


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return dict(yaml.safe_load(handle) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"cannot read {path}: {exc}") from exc
