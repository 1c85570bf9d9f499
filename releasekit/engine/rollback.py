"""rollback ENV: switch back to a retained earlier release. Nothing is built."""

from __future__ import annotations

from dataclasses import dataclass

from releasekit.engine.runtime import Target, live_entry, reconcile, switch
from releasekit.errors import NotFoundError
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry


@dataclass(frozen=True)
class RollbackResult:
    env: str
    from_release: int
    to_release: int
    git_sha: str
    views: int


def rollback(target: Target, to: int | None = None) -> RollbackResult:
    with target.store.lock(target.name, owner=target.who), target.warehouse() as warehouse:
        target.check_grants(warehouse)
        reconcile(target, warehouse)
        entries = target.store.entries(target.name)
        live = live_entry(entries)
        if live is None:
            raise NotFoundError(
                f"environment {target.name!r} has no live release to roll back from",
                hint=f"deploy it first: releasekit deploy {target.name}",
            )
        wanted = ledger.rollback_target(entries, to, keep=target.env.retention)
        release = _release_entry(entries, wanted)
        missing = {v.relation for v in release.models.values()} - warehouse.relations(target.physical_schema)
        if missing:
            raise NotFoundError(
                f"release {wanted} of {target.name!r} can no longer be served: "
                f"{len(missing)} physical relation(s) are gone (e.g. {sorted(missing)[0]})",
                hint="pick a more recent release with `releasekit releases`, or redeploy its commit",
            )
        fields = dict(params=release.params, models=release.models, previous_release=live.release_id)
        target.record("rollback", "switching", wanted, git_sha=release.git_sha, **fields)
        switch(target, warehouse, release.models, live.models, wanted, release.git_sha)
        target.record("rollback", "succeeded", wanted, git_sha=release.git_sha, **fields)
        return RollbackResult(target.name, live.release_id, wanted, release.git_sha, len(release.models))


def _release_entry(entries: list[LedgerEntry], release_id: int) -> LedgerEntry:
    for entry in reversed(entries):
        if entry.release_id == release_id and entry.kind == "deploy" and entry.outcome == "succeeded":
            return entry
    raise NotFoundError(f"release {release_id} never succeeded")
