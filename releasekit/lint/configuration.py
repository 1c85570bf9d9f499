"""sqlfluff's configuration for a file: the project's own, over releasekit's defaults.

The project's config is found as sqlfluff finds it: `.sqlfluff`, `pyproject.toml`
(`[tool.sqlfluff...]`), `setup.cfg`, `tox.ini` and `pep8.ini` in the file's folder and every
folder above it, nearest winning, plus the user's own config. Beneath all of them lie
releasekit's defaults: the caller's dialect (from the dbt adapter), the Jinja templater
with dbt's builtins, the project's macro folders, and `var()`/`env_var()` answering with
the environment's values. Anything the project sets wins over a default.

Above all of them lies what the environment being linted fixes for the dbt templater
(`templater = dbt`): its vars, and the profiles folder, profile and target releasekit builds
it with, so dbt compiles each model as the environment's build will. Vars the project's
`[sqlfluff:templater:dbt:context]` names and the environment does not still apply.

A config sqlfluff cannot use is a `ConfigError` naming the file and key to fix.
"""

from __future__ import annotations

import configparser
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlfluff
from sqlfluff.core import FluffConfig, SQLFluffUserError
from sqlfluff.core.config.file import load_config_file_as_dict
from sqlfluff.core.config.loader import load_config_up_to_path
from sqlfluff.core.helpers.dict import nested_combine

from releasekit.errors import ConfigError
from releasekit.lint.context import dbt_context
from releasekit.lint.project import DbtProject

# The files sqlfluff reads config from in each folder, lowest precedence first.
CONFIG_FILES = ("setup.cfg", "tox.ini", "pep8.ini", ".sqlfluff", "pyproject.toml")
DBT_TEMPLATER_HINT = (
    "install sqlfluff's dbt templater: pip install 'releasekit[lint-dbt]' (or sqlfluff-templater-dbt of "
    "the same release as sqlfluff), or use `templater = jinja`, which releasekit sets up with dbt's "
    "builtins, your macros and the environment's vars"
)


# dbt adapter types whose sqlfluff dialect has another name; others share theirs.
_ADAPTER_DIALECTS = {"spark": "sparksql", "sqlserver": "tsql", "synapse": "tsql", "fabric": "tsql"}


def dialect_for_adapter(adapter_type: str) -> str:
    """The sqlfluff dialect for a dbt adapter type (`duckdb`, `postgres`, `spark`, ...)."""
    return _ADAPTER_DIALECTS.get(adapter_type, adapter_type)


@dataclass(frozen=True)
class DbtOptions:
    """What the environment fixes for the dbt templater; None leaves it to the project's
    sqlfluff config, then to dbt (DBT_PROFILES_DIR, DBT_TARGET, the project folder's
    profiles.yml, else ~/.dbt; the profile's default target)."""

    profiles_dir: Path | None = None
    profile: str | None = None
    target: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)  # `--vars`: dbt reads dbt_project.yml's itself

    def overrides(self) -> dict[str, Any]:
        chosen = {"profiles_dir": self.profiles_dir, "profile": self.profile, "target": self.target}
        dbt: dict[str, Any] = {key: str(value) for key, value in chosen.items() if value is not None}
        # sqlfluff-templater-dbt passes its `context` section to dbt as `--vars`.
        return {"templater": {"dbt": {**dbt, "context": dict(self.vars)}}} if self.vars or dbt else {}


@dataclass(frozen=True)
class LintSettings:
    """Everything a lint process needs, picklable (it is sent to worker processes)."""

    project: DbtProject
    dialect: str | None  # used when the project's config names none
    dbt_vars: Mapping[str, Any]  # project vars overlaid by the caller's (for the Jinja templater)
    environ: Mapping[str, str]
    dbt: DbtOptions = field(default_factory=DbtOptions)

    def defaults(self) -> dict[str, Any]:
        jinja = {
            "apply_dbt_builtins": True,
            "context": dbt_context(self.dbt_vars, self.environ),
            **(
                {"load_macros_from_path": ",".join(map(str, self.project.macro_dirs))}
                if self.project.macro_dirs
                else {}
            ),
        }
        dbt = {"project_dir": str(self.project.directory)}
        core = {"templater": "jinja", **({"dialect": self.dialect} if self.dialect else {})}
        return {"core": core, "templater": {"jinja": jinja, "dbt": dbt}}


def load_folder(folder: Path) -> dict[str, Any]:
    """The project's own sqlfluff config for SQL files in `folder`, as sqlfluff loads it.

    Plain data (picklable), so worker processes get exactly what this process read,
    whatever their working directory or environment."""
    try:
        return load_config_up_to_path(str(folder))
    except (configparser.Error, SQLFluffUserError, UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(folder, exc) from None


def build_config(settings: LintSettings, folder: Path, loaded: Mapping[str, Any]) -> FluffConfig:
    """The config for SQL files in `folder` (inline `-- sqlfluff:` directives come later)."""
    dialect = _core(loaded).get("dialect") or settings.dialect
    if dialect is None:
        raise ConfigError(
            f"no SQL dialect for the files in {folder}",
            hint="set `dialect = <name>` under [sqlfluff] in .sqlfluff (e.g. duckdb, postgres)",
        )
    _check_templater(folder, loaded)
    try:
        return FluffConfig(
            configs=nested_combine(settings.defaults(), dict(loaded), settings.dbt.overrides())
        )
    except (SQLFluffUserError, KeyError, ValueError) as exc:
        if _is_dialect_error(exc):
            raise _unknown_dialect(folder, str(dialect), from_project=dialect != settings.dialect) from None
        templater = "templater" in str(exc).lower()
        raise ConfigError(
            f"sqlfluff cannot use its configuration: {exc}",
            file=_setting_source(folder, "templater") if templater else _nearest_config(folder),
            key="[sqlfluff] templater" if templater else None,
            hint="fix that setting (see https://docs.sqlfluff.com/en/stable/configuration/)",
        ) from None


def _is_dialect_error(exc: Exception) -> bool:
    # sqlfluff raises KeyError("Unknown dialect"), or a user error naming a retired one.
    return "dialect" in str(exc).lower()


def _unknown_dialect(folder: Path, dialect: str, *, from_project: bool) -> ConfigError:
    source = _setting_source(folder, "dialect") if from_project else None
    known = ", ".join(sorted(d.label for d in sqlfluff.list_dialects()))  # slow (imports all): errors only
    if source is None:
        return ConfigError(
            f"sqlfluff has no dialect {dialect!r} (from the dbt adapter) for the files in {folder}",
            hint=f"set `dialect = <name>` under [sqlfluff] in the dbt project's .sqlfluff; one of: {known}",
        )
    return ConfigError(
        f"unknown sqlfluff dialect {dialect!r}",
        file=source,
        key="[sqlfluff] dialect",
        hint=f"use one of: {known}",
    )


def _check_templater(folder: Path, loaded: Mapping[str, Any]) -> None:
    if _core(loaded).get("templater") != "dbt":
        return
    if importlib.util.find_spec("sqlfluff_templater_dbt") is None:
        raise ConfigError(
            "the sqlfluff config asks for the dbt templater, which is not installed",
            file=_setting_source(folder, "templater"),
            key="[sqlfluff] templater",
            hint=DBT_TEMPLATER_HINT,
        )


def _unreadable(folder: Path, exc: Exception) -> ConfigError:
    culprit = next((p for p in config_files(folder) if not _loads(p)), None)
    return ConfigError(
        f"sqlfluff cannot read its config: {str(exc).splitlines()[0]}",
        file=str(culprit) if culprit else None,
        hint="fix the file's syntax: INI sections like [sqlfluff] in .sqlfluff, setup.cfg or tox.ini; "
        "[tool.sqlfluff.core] tables in pyproject.toml",
    )


def config_files(folder: Path) -> list[Path]:
    """The config files sqlfluff may read for SQL files in `folder`, farthest first."""
    folders = [*reversed(folder.resolve().parents), folder.resolve()]
    return [d / name for d in folders for name in CONFIG_FILES if (d / name).is_file()]


def _loads(path: Path) -> bool:
    try:
        load_config_file_as_dict(str(path))
    except Exception:  # any failure to load is what we are looking for
        return False
    return True


def _setting_source(folder: Path, key: str) -> str | None:
    """The nearest config file setting `key` in sqlfluff's core section."""
    for path in reversed(config_files(folder)):
        if _loads(path) and key in _core(load_config_file_as_dict(str(path))):
            return str(path)
    return None


def _core(loaded: Mapping[str, Any]) -> Mapping[str, Any]:
    core = loaded.get("core")
    return core if isinstance(core, Mapping) else {}


def _nearest_config(folder: Path) -> str | None:
    files = config_files(folder)
    return str(files[-1]) if files else None
