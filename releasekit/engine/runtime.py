"""What one run against one environment works with, passed in rather than looked up."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from releasekit.config.model import Connection, EnvironmentConfig
from releasekit.dbtcore.session import DbtProject
from releasekit.engine.drift import warehouse_drift
from releasekit.errors import ConfigError, LockedError, WarehouseBusyError
from releasekit.state import ledger
from releasekit.state.base import (
    Claim,
    Kind,
    LedgerEntry,
    ModelVersion,
    Outcome,
    StateStore,
    UnreadableLedger,
)
from releasekit.warehouse.base import ReleaseMarker, Warehouse
from releasekit.warehouse.registry import connect


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunContext:
    """One environment, with everything a deploy, rollback or gc of it needs."""

    env: EnvironmentConfig
    physical_schema: str
    store: StateStore
    connection: Connection
    dbt: DbtProject | None = None  # rollback and gc need no dbt
    git_sha: str = ""
    who: str = ""
    environ: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = utc_now
    open_warehouse: Callable[[Connection], Warehouse] = connect
    # How long to wait for a warehouse another process holds (DuckDB: one writer per
    # file). 0 fails at once, as a deploy does; branch environments wait their turn.
    busy_wait: float = 0.0
    on_wait: Callable[[str], None] | None = None  # told once, with who holds it
    # How source data versions are read (engine.data), from releasekit.yml `refresh`.
    data_mode: str = "checksum"
    # The environment a promotion brings this run's release from: its versions of equal
    # code are served first, so a promotion reuses the data it refreshed (engine.plan).
    promoted_from: str | None = None
    # Where alerts about statistical process control findings go (releasekit.yml `alerts`).
    alert_webhook: str | None = None

    @property
    def name(self) -> str:
        return self.env.name

    def now(self) -> str:
        return self.clock().isoformat(timespec="seconds")

    @contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        warehouse = self._open_waiting()
        try:
            yield warehouse
        finally:
            warehouse.close()

    def check_grants(self, warehouse: Warehouse) -> None:
        """Grants a warehouse cannot give are a config error. Every command that switches
        asks first, before it records or builds anything; teardown and gc never need them."""
        if any(self.env.grants.values()) and not warehouse.capabilities.grants:
            where = (
                self.env.source_file.name if self.env.source_file else "branch_environments in releasekit.yml"
            )
            raise ConfigError(
                f"environment {self.name!r} declares grants, but {self.connection.type} has no GRANT",
                file=where,
                key="grants",
                hint="remove `grants` (and defaults.grants in releasekit.yml) for this environment",
            )

    def _open_waiting(self) -> Warehouse:
        deadline, pause, told = time.monotonic() + self.busy_wait, 0.05, False
        while True:
            try:
                return self.open_warehouse(self.connection)
            except WarehouseBusyError as busy:
                if time.monotonic() + pause > deadline:
                    raise
                if self.on_wait is not None and not told:
                    self.on_wait(busy.message)
                    told = True
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def record(self, kind: Kind, outcome: Outcome, release_id: int, **fields: Any) -> LedgerEntry:
        entry = LedgerEntry(
            env=self.name,
            release_id=release_id,
            kind=kind,
            outcome=outcome,
            git_sha=fields.pop("git_sha", self.git_sha),
            who=self.who,
            at=self.now(),
            physical_schema=self.physical_schema,
            **fields,
        )
        return self.store.append(entry)

    def marker(self, release_id: int, git_sha: str) -> ReleaseMarker:
        return ReleaseMarker(env=self.name, release_id=release_id, git_sha=git_sha, switched_at=self.now())


@dataclass(frozen=True)
class Survey:
    """What the whole ledger says, as one environment's plan needs it."""

    live: LedgerEntry | None  # this environment's live release
    # Relations whose tests passed (every release that reached its switch), with a version
    # record of each: what it holds (code and data version).
    versions: dict[str, ModelVersion]
    elsewhere: dict[str, tuple[str, ModelVersion]]  # other environments' live versions by model
    # Other environments' ledgers that do not read: planned without. Nothing they hold is
    # verified, and what they might serve is never dropped as stale (see engine.deploy).
    unreadable: tuple[UnreadableLedger, ...] = ()
    others: dict[str, LedgerEntry] = field(default_factory=dict)  # other environments' live entries

    @property
    def verified(self) -> set[str]:
        return set(self.versions)


def survey(store: StateStore, env: str, physical_schema: str) -> Survey:
    """The environment's own ledger must read (StateError naming the document); another
    environment's that does not is left out and named in `unreadable`."""
    versions: dict[str, ModelVersion] = {}
    others: dict[str, LedgerEntry] = {}
    elsewhere: dict[str, tuple[str, ModelVersion]] = {}
    own = store.entries(env)
    scan = store.scan_ledgers()
    ledgers = [*scan.entries.items(), *scan.branches.items(), (env, own)]
    for name, entries in ledgers:
        for entry in entries:
            if entry.outcome in ("switching", "succeeded") and entry.physical_schema == physical_schema:
                versions.update((version.relation, version) for version in entry.models.values())
        current = ledger.live_entry(entries)
        if name != env and current is not None:
            elsewhere.update({uid: (name, version) for uid, version in current.models.items()})
            others[name] = current
    unreadable = tuple(ledger for ledger in scan.unreadable if ledger.env != env)
    return Survey(ledger.live_entry(own), versions, elsewhere, unreadable, others)


# How long a deploy waits for another environment's run that is building a relation it
# needs: that run's build and tests, which take minutes on a big project.
SETTLE_WAIT = 3600.0


def live_claims(run: RunContext) -> list[Claim]:
    """What live runs of other environments claim in `run`'s physical schema."""
    return [
        claim
        for claim in run.store.claims()
        if claim.live and claim.env != run.name and claim.physical_schema == run.physical_schema
    ]


def wait_for_claims(run: RunContext, claims: Sequence[Claim], *, timeout: float = SETTLE_WAIT) -> None:
    """Wait until the runs that made `claims` let go of them (succeeded, failed or died),
    saying once who is waited for; LockedError naming them after `timeout`."""
    ids = {claim.lock_id for claim in claims}
    if run.on_wait is not None:
        run.on_wait(
            "other runs are building relations this deploy needs: "
            + "; ".join(f"{c.env} by {c.owner} (lock id {c.lock_id})" for c in claims)
        )
    deadline, pause = time.monotonic() + timeout, 0.2
    while any(c.live and c.lock_id in ids for c in run.store.claims()):
        if time.monotonic() > deadline:
            raise LockedError(
                f"waited {timeout:g} s for other runs to finish building what {run.name!r} needs: "
                + "; ".join(f"{c.env} by {c.owner}, lock id {c.lock_id}" for c in claims),
                hint="rerun when they are done; if such a run is gone, clear its lock with "
                "`releasekit unlock ENV --id LOCK_ID`",
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)


def reconcile(run: RunContext, warehouse: Warehouse) -> LedgerEntry | None:
    """Settle a switch a killed run announced but never confirmed: the warehouse's marker
    says whether its transaction committed."""
    pending = ledger.pending_switch(run.store.entries(run.name))
    if pending is None:
        return None
    marker = warehouse.read_marker(run.env.schema)
    committed = marker is not None and marker.release_id == pending.release_id
    if committed and pending.kind == "repair":  # its release was live before: the marker alone cannot tell
        committed = not warehouse_drift(warehouse, run.env, pending)
    return run.record(
        pending.kind,
        "succeeded" if committed else "abandoned",
        pending.release_id,
        git_sha=pending.git_sha,
        params=pending.params,
        models=pending.models,
        built=pending.built,
        reused=pending.reused,
        previous_release=pending.previous_release,
        promotion=pending.promotion,
        forced=pending.forced,
        hold=pending.hold,
        refresh=pending.refresh,
        note="recovered after an interrupted run: the switch had "
        + ("committed" if committed else "not committed"),
    )


def switch(
    run: RunContext,
    warehouse: Warehouse,
    models: Mapping[str, ModelVersion],
    previous: Mapping[str, ModelVersion],
    release_id: int,
    git_sha: str,
    *,
    also_drop: Collection[str] = (),
) -> None:
    """`also_drop`: views of releasekit's kind the schema holds and no release has (drift)."""
    views = {version.name: version.relation for version in models.values()}
    dropped = ({version.name for version in previous.values()} | set(also_drop)) - set(views)
    warehouse.switch(
        run.env.schema,
        views,
        physical_schema=run.physical_schema,
        marker=run.marker(release_id, git_sha),
        drop=sorted(dropped),
        grants=run.env.grants,
    )
