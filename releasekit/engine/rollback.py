"""rollback ENV: switch back to a retained earlier release. Nothing is built.

A rollback holds the environment: the rollback entry records what it rolled back from (the
commit and its content), and `sync` leaves the environment alone while its branch brings
nothing else, so the next sync does not redeploy what was just rolled back. A rollback of a
held environment keeps what the hold already covered. The next deploy ends the hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from releasekit.engine.runtime import RunContext, reconcile, switch
from releasekit.errors import NotFoundError
from releasekit.state import ledger
from releasekit.state.base import RELEASE_KINDS, LedgerEntry, ModelVersion


@dataclass(frozen=True)
class RollbackResult:
    env: str
    from_release: int
    to_release: int
    git_sha: str
    views: int  # the views the release serves
    hold: ledger.Hold | None = None
    changed: int = 0  # views the switch pointed elsewhere, added or dropped


Content = Callable[[str], str | None]  # a commit's content (its dbt project's git tree), if known


def rollback(run: RunContext, to: int | None = None, *, content_of: Content | None = None) -> RollbackResult:
    """Switch `run` back to release `to` (default: the one before live). `content_of`
    tells the hold what the rolled-back commit holds; without it, the hold covers the
    commit alone."""
    with run.store.lock(run.name, owner=run.who), run.warehouse() as warehouse:
        run.check_grants(warehouse)
        reconcile(run, warehouse)
        entries = run.store.entries(run.name)
        live = ledger.require_live(entries, run.name, "roll back from", label=f"environment {run.name!r}")
        wanted = ledger.rollback_target(entries, to, keep=run.env.retention)
        release = _release_entry(entries, wanted)
        missing = {v.relation for v in release.models.values()} - warehouse.relations(run.physical_schema)
        if missing:
            raise NotFoundError(
                f"release {wanted} of {run.name!r} can no longer be served: "
                f"{len(missing)} physical relation(s) are gone (e.g. {sorted(missing)[0]})",
                hint="pick a more recent release with `releasekit releases`, or redeploy its commit",
            )
        hold = _hold(entries, live, content_of)
        fields = dict(
            params=release.params, models=release.models, previous_release=live.release_id, hold=hold
        )
        run.record("rollback", "switching", wanted, git_sha=release.git_sha, **fields)
        switch(run, warehouse, release.models, live.models, wanted, release.git_sha)
        done = run.record("rollback", "succeeded", wanted, git_sha=release.git_sha, **fields)
        changed = _changed_views(live.models, release.models)
        return RollbackResult(
            run.name,
            live.release_id,
            wanted,
            release.git_sha,
            len(release.models),
            ledger.hold_of(done),
            changed,
        )


def _changed_views(before: Mapping[str, ModelVersion], after: Mapping[str, ModelVersion]) -> int:
    moved = sum(1 for uid, v in after.items() if uid not in before or before[uid].relation != v.relation)
    return moved + sum(1 for uid in before if uid not in after)


def _hold(entries: list[LedgerEntry], live: LedgerEntry, content_of: Content | None) -> dict[str, Any]:
    """What the rollback holds the environment against: the commit it rolls back from and
    its content, plus whatever an earlier hold still in force covered. A commit deployed
    with uncommitted changes has no known content: only its sha is held."""
    earlier = ledger.active_hold(entries)
    commits = list(earlier.commits) if earlier else []
    contents = list(earlier.contents) if earlier else []
    commit = live.git_sha
    content = None if content_of is None or commit.endswith("-dirty") else content_of(commit)
    commits += [commit] if commit not in commits else []
    contents += [content] if content is not None and content not in contents else []
    return {
        "action": "hold",
        "from_release": live.release_id,
        "from_commit": commit,
        "commits": commits,
        "contents": contents,
    }


def _release_entry(entries: list[LedgerEntry], release_id: int) -> LedgerEntry:
    for entry in reversed(entries):
        if entry.release_id == release_id and entry.kind in RELEASE_KINDS and entry.outcome == "succeeded":
            return entry
    raise NotFoundError(f"release {release_id} never succeeded")
