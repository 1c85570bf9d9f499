"""Load releasekit.yml and the environment files into one frozen `ProjectConfig`.

Precedence, lowest first; a later layer wins key by key:

    1. built-in defaults (`model.DEFAULT_*`; an environment's schema defaults to its name)
    2. releasekit.yml; its `defaults:` block applies to every environment
    3. <environments_dir>/<ENV>.yml
    4. RELEASEKIT_* environment variables: RELEASEKIT_PROJECT_DIR, RELEASEKIT_PROFILES_DIR,
       RELEASEKIT_PROFILE, RELEASEKIT_STATE_PATH, RELEASEKIT_STATE_URL (s3://bucket/prefix),
       RELEASEKIT_PHYSICAL_SCHEMA,
       RELEASEKIT_TARGET (every environment), RELEASEKIT_VARS (a YAML/JSON mapping),
       RELEASEKIT_ALERT_WEBHOOK
    5. command-line flags (`overrides`): project_dir, profiles_dir, profile, state_path,
       physical_schema, target, vars

`vars` merge shallowly, key by key, through every layer; so does `spc`, which starts from
releasekit.yml's top-level `spc:` (below `defaults.spc`) and ends at a model's own
`meta: {releasekit: {spc: ...}}` (config.spc). A key written in a file counts
even when its value is null (`target: null` in an environment file means the profile's
default target, whatever `defaults.target` says); an empty environment variable or a None
override counts as not given. Relative paths, wherever they come from, are resolved
against the folder holding releasekit.yml, so the result never depends on the cwd.

Every file is validated whole against the published JSON Schemas (`schemas/`) and every
problem in every file is reported in one `ConfigError`, one `file:key.path: message` line
each (see `validation`), because fixing config one error per run wears people out.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.config.model import (
    DEFAULT_DATA_VERSIONS,
    DEFAULT_ENVIRONMENTS_DIR,
    DEFAULT_LOCK_TTL_SECONDS,
    DEFAULT_PHYSICAL_SCHEMA,
    DEFAULT_RETENTION,
    DEFAULT_STATE_PATH,
    BranchTemplate,
    CheckPolicy,
    EnvironmentConfig,
    ProjectConfig,
    PromotionPolicy,
    SpcPolicy,
    StateLocation,
)
from releasekit.config.safe_yaml import load_yaml
from releasekit.config.spc import spc_policy
from releasekit.config.validation import (
    Problem,
    config_error,
    schema_problems,
    schema_validator,
    yaml_problem,
)
from releasekit.errors import ConfigError

CONFIG_FILE = "releasekit.yml"
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_NAME_LENGTH = 63  # the name is the default schema, and PostgreSQL cuts longer names
INIT_HINT = "run `releasekit init` to create releasekit.yml and environments/"
COMMAND_LINE = "command line"

ENVIRON_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "RELEASEKIT_PROJECT_DIR": "project_dir",
        "RELEASEKIT_PROFILES_DIR": "profiles_dir",
        "RELEASEKIT_PROFILE": "profile",
        "RELEASEKIT_STATE_PATH": "state_path",
        "RELEASEKIT_STATE_URL": "state_url",
        "RELEASEKIT_PHYSICAL_SCHEMA": "physical_schema",
        "RELEASEKIT_TARGET": "target",
        "RELEASEKIT_VARS": "vars",
        "RELEASEKIT_ALERT_WEBHOOK": "alert_webhook",
    }
)
OVERRIDE_KEYS = frozenset(ENVIRON_KEYS.values())
_PATH_KEYS = frozenset({"project_dir", "profiles_dir", "state_path"})

Layer = Mapping[str, Any]  # flat settings from one source, keyed like OVERRIDE_KEYS


# --- public API -------------------------------------------------------------------------


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds releasekit.yml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} in {start} or any folder above it",
        hint="run `releasekit init` at the top of your repository, or cd into a project",
    )


def load_config(
    root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ProjectConfig:
    """Read, layer and validate the whole configuration under `root`; raise one ConfigError."""
    root = root.resolve()
    if not (root / CONFIG_FILE).is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {root}", hint=INIT_HINT)
    problems: list[Problem] = []
    layers = _command_layers(os.environ if environ is None else environ, overrides or {}, problems)
    document = _read_document(root / CONFIG_FILE, root, "releasekit", problems)
    if document is None:  # the environment files depend on it (environments_dir, defaults)
        raise config_error(problems)
    settings = _project_settings(document, layers)
    env_dir = _resolve(root, settings["environments_dir"])
    env_documents = _read_environment_documents(env_dir, root, problems)
    project_spc = {"spc": _section(document, "spc")}
    environments = _build_environments(env_documents, [project_spc, _section(document, "defaults")], layers)
    problems += _check_environments(environments, set(env_documents), settings, root)
    if problems:
        raise config_error(problems)
    return _project_config(root, settings, environments)


def environments_folder(root: Path) -> Path:
    """Where releasekit.yml under `root` keeps the environment files (its `environments_dir`,
    else the default). An unreadable releasekit.yml gives the default: `load_config` then
    reports what is wrong with it."""
    problems: list[Problem] = []
    document = _read_document(root / CONFIG_FILE, root, "releasekit", problems) or {}
    return _resolve(root, document.get("environments_dir", DEFAULT_ENVIRONMENTS_DIR))


# --- reading and validating files -------------------------------------------------------


def _read_document(path: Path, root: Path, schema: str, problems: list[Problem]) -> Mapping[str, Any] | None:
    """The file's YAML if it parses and validates, else None (its problems appended)."""
    source = _label(path, root)
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(yaml_problem(exc, source))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(source, None, f"cannot read the file: {exc}"))
        return None
    found = schema_problems({} if document is None else document, schema_validator(schema), source)
    problems += found
    return None if found else (document or {})


def _read_environment_documents(
    env_dir: Path, root: Path, problems: list[Problem]
) -> dict[str, tuple[Path, Any]]:
    """name -> (file, validated document or None) for every environment file."""
    documents: dict[str, tuple[Path, Any]] = {}
    for path in _environment_files(env_dir, root, problems):
        if not _check_name(path, root, problems):
            continue
        if path.stem in documents:  # dev.yml and dev.yaml
            other = _label(documents[path.stem][0], root)
            message = f"environment {path.stem!r} is also declared in {other}"
            problems.append(Problem(_label(path, root), None, message, "keep one of them"))
            continue
        documents[path.stem] = (path, _read_document(path, root, "environment", problems))
    return documents


def _environment_files(env_dir: Path, root: Path, problems: list[Problem]) -> list[Path]:
    paths = sorted([*env_dir.glob("*.yml"), *env_dir.glob("*.yaml")]) if env_dir.is_dir() else []
    if not paths:
        missing = "does not exist" if not env_dir.is_dir() else "holds no <name>.yml files"
        problems.append(Problem(_label(env_dir, root), None, f"folder {missing}", INIT_HINT))
    return paths


def _check_name(path: Path, root: Path, problems: list[Problem]) -> bool:
    name = path.stem
    if ENV_NAME_PATTERN.match(name) and len(name) <= MAX_NAME_LENGTH:
        return True
    message = f"{name!r} is not a valid environment name"
    hint = (
        "rename the file: letters, digits, _ and -, starting with a letter or digit, "
        f"at most {MAX_NAME_LENGTH} characters"
    )
    problems.append(Problem(_label(path, root), None, message, hint))
    return False


# --- RELEASEKIT_* variables and command-line overrides ----------------------------------


def _command_layers(
    environ: Mapping[str, str], overrides: Mapping[str, Any], problems: list[Problem]
) -> tuple[Layer, Layer]:
    """The two layers above the files: environment variables, then CLI flags."""
    from_environ = {}
    for variable, key in ENVIRON_KEYS.items():
        text = environ.get(variable)
        if not text:
            continue
        value = _parse_vars(text, f"${variable}", problems) if key == "vars" else text
        if _check_value(key, value, f"${variable}", None, problems):
            from_environ[key] = value
    return from_environ, _override_layer(overrides, problems)


def _override_layer(overrides: Mapping[str, Any], problems: list[Problem]) -> Layer:
    layer: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in OVERRIDE_KEYS:
            hint = f"known keys: {', '.join(sorted(OVERRIDE_KEYS))}"
            problems.append(Problem(COMMAND_LINE, key, "unknown override", hint))
        elif value is not None:
            value = _plain(key, value)
            if _check_value(key, value, COMMAND_LINE, key, problems):
                layer[key] = value
    return layer


def _plain(key: str, value: Any) -> Any:
    """Paths as text and mappings as dicts, the shapes the JSON Schemas check."""
    if key in _PATH_KEYS and isinstance(value, os.PathLike):
        return os.fspath(value)
    return dict(value) if isinstance(value, Mapping) else value


def _parse_vars(text: str, source: str, problems: list[Problem]) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        problems.append(yaml_problem(exc, source))
        return None


def _check_value(key: str, value: Any, source: str, at: str | None, problems: list[Problem]) -> bool:
    """Hold a value from outside the files to the rules its key follows in the files."""
    definitions = schema_validator("releasekit").schema["$defs"]
    text = {"type": "string", "minLength": 1}
    rules = {
        "physical_schema": definitions["schema_name"],
        "vars": definitions["vars"],
        "state_url": definitions["state_url"],
        "alert_webhook": definitions["webhook"],
    }
    validator = Draft202012Validator(rules.get(key, text))
    found = schema_problems(value, validator, source, [at] if at else [])
    problems += found
    return not found


# --- layering ---------------------------------------------------------------------------


def _section(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A mapping section; `key:` with everything below commented out reads as empty."""
    value = document.get(key)
    return value if isinstance(value, Mapping) else {}


_STATE_KEYS = ("url", "region", "endpoint_url", "profile", "lock_ttl_seconds")


def _state_section(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """`state: s3://bucket/prefix` is short for `state: {url: s3://bucket/prefix}`."""
    value = document.get("state")
    return {"url": value} if isinstance(value, str) else _section(document, "state")


def _project_settings(document: Mapping[str, Any], layers: Sequence[Layer]) -> dict[str, Any]:
    dbt, state = _section(document, "dbt"), _state_section(document)
    from_file = {
        **{key: dbt[key] for key in ("project_dir", "profiles_dir", "profile") if key in dbt},
        **({"state_path": state["path"]} if "path" in state else {}),
        **{f"state_{key}": state[key] for key in _STATE_KEYS if key in state},
        **{k: document[k] for k in ("physical_schema", "environments_dir") if k in document},
        "branches": dict(_section(document, "branch_environments")),
        **{key: value for key, value in _section(document, "warehouse").items() if key == "lock_timeout_ms"},
        **{key: value for key, value in _section(document, "refresh").items() if key == "data_versions"},
        **{f"alert_{k}": v for k, v in _section(document, "alerts").items() if k == "webhook"},
    }
    settings: dict[str, Any] = {
        "project_dir": ".",
        "profiles_dir": None,
        "profile": None,
        "state_path": DEFAULT_STATE_PATH,
        **{f"state_{key}": None for key in _STATE_KEYS},
        "physical_schema": DEFAULT_PHYSICAL_SCHEMA,
        "environments_dir": DEFAULT_ENVIRONMENTS_DIR,
        "branches": {},
        "lock_timeout_ms": None,
        "data_versions": DEFAULT_DATA_VERSIONS,
        "alert_webhook": None,
    }
    for layer in (from_file, *layers):
        settings.update((key, value) for key, value in layer.items() if key in settings)
    return settings


def _build_environments(
    documents: Mapping[str, tuple[Path, Any]], defaults: Sequence[Layer], layers: Sequence[Layer]
) -> dict[str, EnvironmentConfig]:
    """Environments whose file validated; the others are already reported."""
    return {
        name: _environment(name, path, [*defaults, document, *layers])
        for name, (path, document) in documents.items()
        if document is not None
    }


def _environment(name: str, path: Path, layers: Sequence[Layer]) -> EnvironmentConfig:
    values: dict[str, Any] = {
        "schema": name,
        "target": None,
        "branch": None,
        "promotes_from": None,
        "retention": DEFAULT_RETENTION,
    }
    merged_vars: dict[str, Any] = {}
    merged_grants: dict[str, Any] = {}
    merged_checks: dict[str, Any] = {}
    merged_spc: dict[str, Any] = {}
    for layer in layers:
        values.update((key, value) for key, value in layer.items() if key in values)
        merged_vars.update(layer.get("vars") or {})
        merged_grants.update(layer.get("grants") or {})
        merged_checks.update(layer.get("checks") or {})
        merged_spc.update(layer.get("spc") or {})
    values["retention"] = int(values["retention"])  # JSON Schema counts 3.0 as an integer
    # A copy behind a read-only view: nobody can change the config through it.
    frozen_vars = MappingProxyType(copy.deepcopy(merged_vars))
    grants = _frozen_grants(merged_grants)
    checks = _check_policy(merged_checks)
    promotion = _promotion_policy(layers)
    return EnvironmentConfig(
        name=name,
        vars=frozen_vars,
        grants=grants,
        checks=checks,
        promotion=promotion,
        spc=spc_policy(SpcPolicy(), merged_spc),
        source_file=path,
        **values,
    )


def _promotion_policy(layers: Sequence[Layer]) -> PromotionPolicy:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer.get("promotion") or {})
    if "allow_from" in merged:
        merged["allow_from"] = tuple(merged["allow_from"])
    return PromotionPolicy(**merged)


def _check_policy(settings: Mapping[str, Any]) -> CheckPolicy:
    # YAML 1.1 reads a bare `off` as false.
    severities = {k: "off" if v is False else str(v) for k, v in settings.items() if k != "allow_breaking"}
    return CheckPolicy(**severities, allow_breaking=bool(settings.get("allow_breaking", False)))


def _frozen_grants(grants: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({privilege: tuple(roles) for privilege, roles in grants.items() if roles})


def _resolve(root: Path, value: str | os.PathLike[str]) -> Path:
    return (root / Path(value).expanduser()).resolve()


def _label(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --- checks across environments ---------------------------------------------------------


def _check_environments(
    environments: Mapping[str, EnvironmentConfig],
    declared: set[str],
    settings: Mapping[str, Any],
    root: Path,
) -> list[Problem]:
    ordered = [environments[name] for name in sorted(environments)]
    return [
        *_schema_clashes(ordered, str(settings["physical_schema"]), root),
        *_unknown_sources(ordered, declared, root),
        *_promotion_cycles(environments, root),
        *_unknown_branch_base(settings["branches"], declared),
    ]


def _unknown_branch_base(branches: Mapping[str, Any], declared: set[str]) -> list[Problem]:
    # Only a base written in the file is checked here; the default (dev) is checked when
    # `releasekit env up` needs it, so projects without branch environments need no dev.
    base = branches.get("base")
    if base is None or base in declared or not declared:
        return []
    hint = f"declared environments: {', '.join(sorted(declared)) or 'none'}"
    return [Problem(CONFIG_FILE, "branch_environments.base", f"{base!r} is not a declared environment", hint)]


def _schema_clashes(environments: Sequence[EnvironmentConfig], physical: str, root: Path) -> list[Problem]:
    # Compared case-insensitively: DuckDB and unquoted PostgreSQL names ignore case.
    problems: list[Problem] = []
    owners: dict[str, str | None] = {physical.lower(): None}
    for env in environments:
        owner = owners.setdefault(env.schema.lower(), env.name)
        if owner is None:
            message = f"consumer schema {env.schema!r} is the physical schema"
            hint = "releasekit owns the physical schema; give this environment another `schema:`"
            problems.append(Problem(_source(env, root), "schema", message, hint))
        elif owner != env.name:
            message = f"consumer schema {env.schema!r} is already environment {owner!r}'s schema"
            hint = "give each environment its own `schema:`"
            problems.append(Problem(_source(env, root), "schema", message, hint))
    return problems


def _unknown_sources(
    environments: Sequence[EnvironmentConfig], declared: set[str], root: Path
) -> list[Problem]:
    hint = f"declared environments: {', '.join(sorted(declared))}; or write `promotes_from: null`"
    return [
        Problem(
            _source(env, root),
            "promotes_from",
            f"{env.promotes_from!r} is not a declared environment",
            hint,
        )
        for env in environments
        if env.promotes_from is not None and env.promotes_from not in declared
    ]


def _promotion_cycles(environments: Mapping[str, EnvironmentConfig], root: Path) -> list[Problem]:
    hint = "the first environment of a chain has `promotes_from: null`"
    problems = []
    for cycle in _cycles({name: env.promotes_from for name, env in environments.items()}):
        chain = " -> ".join([*cycle, cycle[0]])
        first = environments[cycle[0]]
        message = f"promotion chain has a cycle: {chain}"
        problems.append(Problem(_source(first, root), "promotes_from", message, hint))
    return problems


def _cycles(sources: Mapping[str, str | None]) -> list[tuple[str, ...]]:
    """Each cycle once, in promotion order (source first), starting at its smallest name."""
    found: dict[frozenset[str], tuple[str, ...]] = {}
    for start in sorted(sources):
        walk: list[str] = []
        node: str | None = start
        while node is not None and node in sources and node not in walk:
            walk.append(node)
            node = sources[node]
        if node is not None and node in walk:
            loop = walk[walk.index(node) :][::-1]  # walking promotes_from runs against the flow
            smallest = loop.index(min(loop))
            found.setdefault(frozenset(loop), tuple(loop[smallest:] + loop[:smallest]))
    return list(found.values())


def _source(env: EnvironmentConfig, root: Path) -> str:
    return _label(env.source_file, root) if env.source_file else env.name


# --- the result -------------------------------------------------------------------------


def _project_config(
    root: Path, settings: Mapping[str, Any], environments: Mapping[str, EnvironmentConfig]
) -> ProjectConfig:
    profiles_dir = settings["profiles_dir"]
    return ProjectConfig(
        root=root,
        dbt_project_dir=_resolve(root, settings["project_dir"]),
        profiles_dir=None if profiles_dir is None else _resolve(root, profiles_dir),
        profile=settings["profile"],
        physical_schema=settings["physical_schema"],
        state_path=_resolve(root, settings["state_path"]),
        state=StateLocation(
            url=settings["state_url"],
            region=settings["state_region"],
            endpoint_url=settings["state_endpoint_url"],
            profile=settings["state_profile"],
            lock_ttl_seconds=settings["state_lock_ttl_seconds"] or DEFAULT_LOCK_TTL_SECONDS,
        ),
        environments=MappingProxyType({env.name: env for env in _promotion_order(environments)}),
        environments_dir=_resolve(root, settings["environments_dir"]),
        branches=_branch_template(settings["branches"]),
        lock_timeout_ms=settings["lock_timeout_ms"],
        data_versions=settings["data_versions"],
        alert_webhook=settings["alert_webhook"],
    )


def _branch_template(settings: Mapping[str, Any]) -> BranchTemplate:
    return BranchTemplate(**{**settings, "grants": _frozen_grants(settings.get("grants") or {})})


def _promotion_order(environments: Mapping[str, EnvironmentConfig]) -> list[EnvironmentConfig]:
    """Sources before the environments they promote into (dev, staging, prod), then by name."""

    def depth(env: EnvironmentConfig) -> int:
        source = env.promotes_from
        return 0 if source is None else 1 + depth(environments[source])

    return sorted(environments.values(), key=lambda env: (depth(env), env.name))
