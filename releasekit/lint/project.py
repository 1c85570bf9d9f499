"""What the linter needs from the dbt project: its macro folders and its vars.

Read from dbt_project.yml with plain YAML (no dbt import): lint must stay cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from releasekit.config.safe_yaml import load_yaml
from releasekit.errors import ProjectError

DEFAULT_MACRO_PATHS = ("macros",)


@dataclass(frozen=True)
class DbtProject:
    directory: Path  # absolute
    name: str
    macro_dirs: tuple[Path, ...]  # absolute, existing folders only
    vars: Mapping[str, Any]  # dbt_project.yml's global vars and those scoped to this project


def read_dbt_project(directory: Path) -> DbtProject:
    directory = directory.resolve()
    data = _load(directory / "dbt_project.yml")
    name = str(data.get("name") or "")
    paths = data.get("macro-paths") or list(DEFAULT_MACRO_PATHS)
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ProjectError(
            f"{directory / 'dbt_project.yml'}: macro-paths must be a list of folder names",
            hint='write it as macro-paths: ["macros"]',
        )
    macro_dirs = tuple(directory / p for p in paths if (directory / p).is_dir())
    return DbtProject(directory, name, macro_dirs, project_vars(data.get("vars"), name))


def project_vars(raw: Any, project_name: str) -> dict[str, Any]:
    """The vars dbt gives a model of `project_name` from dbt_project.yml: the global ones,
    overlaid by those under the project's own name (dbt's package scoping)."""
    if not isinstance(raw, Mapping):
        return {}
    scoped = raw.get(project_name)
    found = {k: v for k, v in raw.items() if k != project_name or not isinstance(v, Mapping)}
    return {**found, **(dict(scoped) if isinstance(scoped, Mapping) else {})}


def _load(path: Path) -> Mapping[str, Any]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ProjectError(
            f"no dbt_project.yml in {path.parent}",
            hint="lint the folder that holds the dbt project (dbt.project_dir in releasekit.yml)",
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"cannot read {path}: {exc}", hint="fix the YAML of dbt_project.yml") from exc
    if not isinstance(data, Mapping):
        raise ProjectError(f"{path} is not a YAML mapping", hint="dbt_project.yml holds keys like name:")
    return data
