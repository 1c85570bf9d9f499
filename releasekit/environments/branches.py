"""Branch environments: a schema of views onto the base environment's live release.

Bringing one up copies no data and builds nothing: it is a release switch whose model map
is the base's. Order of writes, so a run killed anywhere leaves nothing that the next
`env up`, `env down` or `env gc` does not finish or clean:

    up:    registry record -> ledger `switching` -> warehouse switch -> ledger `succeeded`
    down:  drop schema -> ledger `teardown` -> forget the registry record

A drop the warehouse refuses (a user's view reads the schema) leaves the ledger and the
registry as they were: the environment is still up, and gc still keeps what it reads.

The registry is the only authority for what teardown and gc may drop: a schema releasekit
did not record as a branch environment is never dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from releasekit.engine.runtime import RunContext, reconcile, switch
from releasekit.state import ledger
from releasekit.state.base import BranchEnvironment, LedgerEntry


@dataclass(frozen=True)
class UpResult:
    record: BranchEnvironment
    created: bool  # False: it was already up (running `env up` twice is harmless)
    release_id: int
    views: int
    rebased: bool = False  # it was up, and now serves its base's current release and data


@dataclass(frozen=True)
class DownResult:
    record: BranchEnvironment
    schema_dropped: bool


def bring_up(
    run: RunContext, record: BranchEnvironment, base_live: LedgerEntry, *, rebase: bool = False
) -> UpResult:
    """Make `record.schema` serve the base's live release, unless it already serves one.
    `rebase`: switch one that is up onto the base's live release (code and data) too, unless
    it serves that very release already; its own changes are deployed again from there."""
    store = run.store
    with store.lock(run.name, owner=run.who), run.warehouse() as warehouse:
        run.check_grants(warehouse)
        record = store.branch(record.branch) or record
        store.register(record)
        reconcile(run, warehouse)
        entries = store.entries(run.name)
        live = ledger.live_entry(entries)
        marker = warehouse.read_marker(record.schema)
        is_up = live is not None and marker is not None and marker.release_id == live.release_id
        on_base = live is not None and dict(live.models) == dict(base_live.models)
        if is_up and live is not None and (not rebase or on_base):
            return UpResult(record, False, live.release_id, len(live.models))
        rebasing = is_up and rebase
        if rebasing:
            record = dataclasses.replace(record, base_release=base_live.release_id)
            store.register(record)
        release_id = ledger.next_release_id(entries)
        how = "rebased onto " if rebasing else ledger.BRANCHED_FROM
        fields = dict(
            git_sha=base_live.git_sha,
            params=base_live.params,
            models=base_live.models,
            reused=tuple(base_live.models),
            previous_release=live.release_id if rebasing and live else None,
            note=f"{how}{record.base} release {base_live.release_id}",
        )
        run.record("deploy", "switching", release_id, **fields)
        previous = live.models if rebasing and live else {}
        switch(run, warehouse, base_live.models, previous, release_id, base_live.git_sha)
        run.record("deploy", "succeeded", release_id, **fields)
        return UpResult(record, not rebasing, release_id, len(base_live.models), rebased=rebasing)


def tear_down(run: RunContext, record: BranchEnvironment) -> DownResult:
    store = run.store
    with store.lock(run.name, owner=run.who), run.warehouse() as warehouse:
        # Settle a switch a killed `env up` or deploy announced while the marker can still
        # say whether it committed: once the schema is gone nothing can. Left pending, the
        # teardown entry would hide it for good, or, after an earlier teardown of the same
        # branch, `torn_down` would be true and this teardown would go unrecorded.
        reconcile(run, warehouse)
        existed = warehouse.read_marker(record.schema) is not None or bool(warehouse.relations(record.schema))
        warehouse.drop_schema(record.schema)
        entries = store.entries(run.name)
        if not ledger.torn_down(entries):
            live = ledger.live_release_id(entries) or 0
            run.record("teardown", "succeeded", live, note=f"schema {record.schema} dropped")
        store.unregister(record.branch)
        return DownResult(record, existed)


def expired(record: BranchEnvironment, now: datetime) -> bool:
    return not record.pinned and datetime.fromisoformat(record.expires_at) <= now
