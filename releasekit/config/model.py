"""Frozen configuration values. Loading and validation live in `loader`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releasekit.errors import NotFoundError

DEFAULT_PHYSICAL_SCHEMA = "rk__physical"
DEFAULT_RETENTION = 3
DEFAULT_STATE_PATH = ".releasekit"
DEFAULT_LOCK_TTL_SECONDS = 60
DEFAULT_ENVIRONMENTS_DIR = "environments"
DEFAULT_DATA_VERSIONS = "checksum"  # how a refresh reads a source's data version (engine.data)

Grants = Mapping[str, tuple[str, ...]]  # privilege ("select", ...) -> roles


@dataclass(frozen=True)
class Connection:
    """How to reach a warehouse, as read from the dbt profile's target."""

    type: str  # "duckdb", "postgres", ...
    database: str
    settings: Mapping[str, Any] = field(default_factory=dict)  # path, host, port, user, ...


@dataclass(frozen=True)
class CheckPolicy:
    """What `releasekit check` requires of a change on its way into an environment."""

    lint: str = "error"  # error | warn | off
    build: str = "error"
    logic: str = "error"
    diff: str = "error"  # the severity of breaking changes
    allow_breaking: bool = False  # True: breaking changes are reported, never an error

    def severity(self, check: str) -> str:
        value = getattr(self, check)
        if check == "diff" and self.allow_breaking and value == "error":
            return "warn"
        return str(value)


# The kinds of metric statistical process control can judge (warehouse.profile measures them).
SPC_METRICS = ("row_count", "null_fraction", "mean", "min", "max", "newest")


@dataclass(frozen=True)
class SpcPolicy:
    """How statistical process control judges an environment's data (releasekit.yml `spc`,
    `defaults.spc`, environments/<name>.yml `spc`, then a model's `meta.releasekit.spc`).
    `severity`: warn publishes and alerts, error holds the data back, off measures nothing."""

    severity: str = "warn"  # error | warn | off
    metrics: tuple[str, ...] = ("row_count", "null_fraction", "mean")
    window: int = 30
    min_history: int = 8
    sigma: float = 3.0
    tolerance: float = 0.02


@dataclass(frozen=True)
class PromotionPolicy:
    """What `releasekit promote` demands before moving a release into an environment."""

    merge: str = "ff-only"  # ff-only | merge
    approvals: int = 0
    self_approval: bool = True
    requires: str = "deployed"  # deployed | checked
    allow_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvironmentConfig:
    """One declared environment (environments/<name>.yml merged over the defaults)."""

    name: str
    schema: str  # the consumer schema: views only, chosen by releasekit, not the profile
    target: str | None = None  # dbt target; None means the profile's default target
    vars: Mapping[str, Any] = field(default_factory=dict)  # the environment's parameters
    branch: str | None = None  # git branch holding the desired state (GitOps)
    promotes_from: str | None = None
    retention: int = DEFAULT_RETENTION  # successful releases kept for rollback
    grants: Grants = field(default_factory=dict)  # granted on its views at every switch
    checks: CheckPolicy = field(default_factory=CheckPolicy)
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    spc: SpcPolicy = field(default_factory=SpcPolicy)
    source_file: Path | None = None


@dataclass(frozen=True)
class BranchTemplate:
    """How `releasekit env up` makes a branch's environment (releasekit.yml `branch_environments`)."""

    base: str = "dev"  # declared environment whose live release a branch starts from
    schema_prefix: str = "br_"
    expiry_days: int = 14
    retention: int = 2
    grants: Grants = field(default_factory=dict)


@dataclass(frozen=True)
class StateLocation:
    """Where the state store lives: the local folder (`url` None) or a shared bucket."""

    url: str | None = None  # s3://bucket/prefix
    region: str | None = None
    endpoint_url: str | None = None  # an S3-compatible store's endpoint
    profile: str | None = None  # an AWS profile; credentials are never part of the config
    lock_ttl_seconds: int = DEFAULT_LOCK_TTL_SECONDS


@dataclass(frozen=True)
class ProjectConfig:
    """releasekit.yml plus every environment, validated whole."""

    root: Path  # the folder holding releasekit.yml (normally the git repository's top)
    dbt_project_dir: Path
    profiles_dir: Path | None  # None: dbt's own lookup (project dir, then ~/.dbt)
    profile: str | None  # overrides dbt_project.yml's `profile`
    physical_schema: str = DEFAULT_PHYSICAL_SCHEMA
    state_path: Path = Path(DEFAULT_STATE_PATH)  # the local state, and dbt's caches and logs
    state: StateLocation = field(default_factory=StateLocation)
    environments: Mapping[str, EnvironmentConfig] = field(default_factory=dict)
    environments_dir: Path = Path(DEFAULT_ENVIRONMENTS_DIR)  # holds <name>.yml per environment
    branches: BranchTemplate = field(default_factory=BranchTemplate)
    lock_timeout_ms: int | None = None  # PostgreSQL switch; None: the adapter's default
    data_versions: str = DEFAULT_DATA_VERSIONS  # checksum | rowcount (releasekit.yml `refresh`)
    alert_webhook: str | None = None  # releasekit.yml `alerts.webhook`; RELEASEKIT_ALERT_WEBHOOK

    @property
    def warehouse_settings(self) -> Mapping[str, Any]:
        """releasekit's own connection settings, laid over the dbt profile's."""
        return {} if self.lock_timeout_ms is None else {"lock_timeout_ms": self.lock_timeout_ms}

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise NotFoundError(
                f"no environment named {name!r} (declared: {known})",
                hint=f"add environments/{name}.yml or pick one of the declared environments",
            ) from None
