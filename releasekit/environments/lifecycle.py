"""A branch environment's life: brought up for a branch, listed, torn down, collected.

`branches` holds the warehouse and ledger work (the switch, the drop); this module decides
which environment that is: the branch (default: the current one), its registry record (a
new one names its schema from the branch and refuses a clash), and the refusals that keep
a declared environment out of `releasekit env`. It reads the repository through `Host`,
which `releasekit.workspace.Workspace` satisfies (the workspace sits above this layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from releasekit.config.model import EnvironmentConfig, ProjectConfig
from releasekit.engine.runtime import RunContext
from releasekit.environments.branches import DownResult, UpResult, bring_up, expired, tear_down
from releasekit.errors import ConfigError, NotFoundError, StateError
from releasekit.gitops.repo import GitRepo
from releasekit.state import ledger
from releasekit.state.base import BranchEnvironment, StateStore
from releasekit.warehouse.naming import branch_schema

BRANCH_WAIT_SECONDS = 120.0  # branch environments queue for a busy DuckDB file

WaitCallback = Callable[[str], None]  # told once when a run waits for a busy warehouse


class Host(Protocol):
    """What the lifecycle reads of a repository with releasekit configured."""

    @property
    def config(self) -> ProjectConfig: ...

    @property
    def repo(self) -> GitRepo: ...

    @property
    def store(self) -> StateStore: ...

    def current_branch(self) -> str: ...

    def run_context(self, env: EnvironmentConfig) -> RunContext: ...

    def branch_environment(self, record: BranchEnvironment) -> EnvironmentConfig: ...


@dataclass(frozen=True)
class BranchStatus:
    record: BranchEnvironment
    branch_exists: bool
    expired: bool
    live_release: int | None
    unreadable: str = ""  # its ledger does not read: the problem, naming the document


def up(
    host: Host,
    branch: str | None = None,
    *,
    pin: bool = False,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: WaitCallback | None = None,
    rebase: bool = False,
) -> UpResult:
    """Bring up `branch`'s environment (default: the current branch's) onto the base
    environment's live release; `rebase`: one that is up too (engine.branches.bring_up)."""
    branch = host.current_branch() if branch is None else branch
    refuse_declared(host.config, branch)
    base = host.config.environment(host.config.branches.base)
    label = f"the base environment {base.name!r}"
    base_live = ledger.require_live(host.store.entries(base.name), base.name, "branch from", label=label)
    record = new_record(host, branch, base.name, base_live.release_id, pin=pin)
    run = host.run_context(host.branch_environment(record))
    return bring_up(
        dataclasses.replace(run, busy_wait=wait, on_wait=on_wait), record, base_live, rebase=rebase
    )


def ensure_up(host: Host, branch: str, *, on_wait: WaitCallback | None = None) -> BranchEnvironment:
    """`branch`'s registry record, bringing its environment up first when it has none."""
    refuse_declared(host.config, branch)
    record = host.store.branch(branch)
    return record if record is not None else up(host, branch, on_wait=on_wait).record


def down(
    host: Host,
    branch: str | None = None,
    *,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: WaitCallback | None = None,
) -> DownResult:
    """Drop `branch`'s environment (default: the current branch's); one releasekit did not
    make is a NotFoundError, a declared one is refused."""
    branch = host.current_branch() if branch is None else branch
    found = down_if_up(host, branch, wait=wait, on_wait=on_wait)
    if found is None:
        raise NotFoundError(
            f"{branch!r} has no branch environment releasekit made",
            hint="`releasekit env list` shows the branch environments",
        )
    return found


def down_if_up(
    host: Host,
    branch: str | None = None,
    *,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: WaitCallback | None = None,
) -> DownResult | None:
    """`down`, except that a branch with no environment is None, not an error."""
    branch = host.current_branch() if branch is None else branch
    record = host.store.branch(branch)
    if record is None:
        refuse_declared(host.config, branch)
        return None
    run = host.run_context(host.branch_environment(record))
    return tear_down(dataclasses.replace(run, busy_wait=wait, on_wait=on_wait), record)


def statuses(host: Host, now: datetime | None = None) -> list[BranchStatus]:
    """Every branch environment releasekit made, as of `now` (default: the clock)."""
    moment = now or datetime.now(UTC)
    return [_status(host, record, moment) for record in host.store.branches()]


def _status(host: Host, record: BranchEnvironment, moment: datetime) -> BranchStatus:
    """One branch environment; a ledger that does not read is named, not raised: it must
    not hide the others from `env list` and `env gc`."""
    try:
        live, problem = ledger.live_release_id(host.store.entries(record.branch)), ""
    except StateError as exc:
        live, problem = None, exc.message
    exists = host.repo.branch_exists(record.branch)
    return BranchStatus(record, exists, expired(record, moment), live, problem)


def collect(host: Host, *, dry_run: bool = False, now: datetime | None = None) -> list[BranchStatus]:
    """Drop the environments whose branch is gone or whose expiry passed (unless pinned);
    one whose ledger does not read is left alone. Returns what it dropped (or would)."""
    doomed = [s for s in statuses(host, now) if (not s.branch_exists or s.expired) and not s.unreadable]
    if not dry_run:
        for status in doomed:
            down(host, status.record.branch)
    return doomed


def refuse_declared(config: ProjectConfig, branch: str) -> None:
    """A declared environment's name or branch is never a branch environment."""
    for env in config.environments.values():
        if branch in (env.name, env.branch):
            raise ConfigError(
                f"{branch!r} belongs to the declared environment {env.name!r}, not to a branch environment",
                hint=f"deploy it with `releasekit deploy {env.name}`; declared environments are never "
                "brought up or dropped with `releasekit env`",
            )


def new_record(host: Host, branch: str, base: str, base_release: int, *, pin: bool) -> BranchEnvironment:
    """The registry record of a new branch environment: its schema named from the branch,
    clear of every declared schema, the physical schema and the base's catalog, and of
    other branch environments' schemas (a clash is refused)."""
    config = host.config
    catalog = host.run_context(config.environment(base)).connection.database  # DuckDB: like a schema
    reserved = [env.schema for env in config.environments.values()] + [config.physical_schema, catalog]
    schema = branch_schema(branch, prefix=config.branches.schema_prefix, reserved=reserved)
    clash = next((r for r in host.store.branches() if r.schema == schema and r.branch != branch), None)
    if clash is not None:
        raise ConfigError(f"branches {branch!r} and {clash.branch!r} map to one schema {schema!r}")
    now = datetime.now(UTC)
    return BranchEnvironment(
        branch=branch,
        schema=schema,
        base=base,
        base_release=base_release,
        owner=host.repo.user(),
        created_at=now.isoformat(timespec="seconds"),
        expires_at=(now + timedelta(days=config.branches.expiry_days)).isoformat(timespec="seconds"),
        pinned=pin,
    )
