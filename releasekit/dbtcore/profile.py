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
from releasekit.config.safe_yaml import load_yaml
from releasekit.config.secrets import env_var_names_in
from releasekit.dbtcore.session import DbtSettings
from releasekit.errors import ProjectError


@dataclass(frozen=True)
class ProfileTargets:
    profile: str
    default: str
    names: tuple[str, ...]


def connection(settings: DbtSettings) -> Connection:
    """The target's connection. Plain profiles (DuckDB, PostgreSQL; Jinja limited to
    `env_var()` and `var()`) are read directly, without importing dbt, whose import alone
    takes a second or more: `env up`, `status` and `rollback` need no more. Anything else
    goes through dbt's own profile loader."""
    try:
        return _read_connection(settings)
    except _NeedsDbt:
        return _dbt_connection(settings)


class _NeedsDbt(Exception):
    """The profile uses something only dbt's loader renders faithfully."""


_FAST_TYPES = ("duckdb", "postgres")


def _read_connection(settings: DbtSettings) -> Connection:
    output = _target_output(settings)
    kind = output.get("type")
    if kind not in _FAST_TYPES:
        raise _NeedsDbt(kind)
    rendered = {key: _render(value, settings) for key, value in output.items()}
    return _duckdb(rendered, settings) if kind == "duckdb" else _postgres(rendered)


def _target_output(settings: DbtSettings) -> Mapping[str, Any]:
    project = _load_yaml(settings.project_dir / "dbt_project.yml")
    name = settings.profile or project.get("profile")
    path = _profiles_dir(settings) / "profiles.yml"
    profiles = _load_yaml(path) if path.is_file() else {}
    entry = profiles.get(name) if isinstance(name, str) else None
    if not isinstance(entry, Mapping):
        raise _NeedsDbt("profile not found: dbt words the error")
    target = settings.target or _render(entry.get("target"), settings)
    output = (entry.get("outputs") or {}).get(target)
    if not isinstance(output, Mapping):
        raise _NeedsDbt("target not found: dbt words the error")
    return output


def _render(value: Any, settings: DbtSettings) -> Any:
    if not isinstance(value, str) or "{" not in value:
        return value
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise _NeedsDbt(f"env var {name} is not set")
        return default

    def var(name: str, default: Any = None) -> Any:
        if name not in settings.vars and default is None:
            raise _NeedsDbt(f"var {name} is not set")
        return settings.vars.get(name, default)

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    try:
        return environment.from_string(value).render(env_var=env_var, var=var)
    except jinja2.TemplateError as exc:
        raise _NeedsDbt(str(exc)) from exc


def _duckdb(output: Mapping[str, Any], settings: DbtSettings) -> Connection:
    path = str(output.get("path") or ":memory:")
    if path != ":memory:":
        path = str((settings.cwd / path).resolve())
    database = str(output.get("database") or ("memory" if path == ":memory:" else Path(path).stem))
    credentials = {"path": path, "database": database, "config_options": output.get("config_options")}
    return Connection(type="duckdb", database=database, settings=credentials)


def _postgres(output: Mapping[str, Any]) -> Connection:
    """Every key of the target passes through (role, sslmode, keepalives, ...), with the
    ones dbt-postgres normalises normalised the same way."""
    database = str(output.get("dbname") or output.get("database") or "")
    credentials = {key: value for key, value in output.items() if key not in ("type", "threads", "dbname")}
    credentials |= {
        "host": str(output.get("host", "localhost")),
        "port": int(output.get("port", 5432)),
        "user": str(output.get("user", "")),
        "password": str(output.get("password") or output.get("pass") or ""),
        "database": database,
        "connect_timeout": int(output.get("connect_timeout", 10)),
    }
    credentials.pop("pass", None)
    return Connection(type="postgres", database=database, settings=credentials)


def _dbt_connection(settings: DbtSettings) -> Connection:
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
        credentials["path"] = str((settings.cwd / credentials["path"]).resolve())
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


def profile_env_var_names(settings: DbtSettings) -> frozenset[str]:
    """The env vars profiles.yml reads (passwords, hosts...), for redaction; none when it
    cannot be read (dbt says why when it runs)."""
    try:
        text = (_profiles_dir(settings) / "profiles.yml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return env_var_names_in(text)


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
            return dict(load_yaml(handle) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"cannot read {path}: {exc}") from exc
