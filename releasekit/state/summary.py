"""What a state store holds, for `releasekit state show`: each environment's ledger and live
release, the branch environments, the commits with check records, the artifacts and the
locks. Only reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from releasekit.config.model import StateLocation
from releasekit.errors import StateError
from releasekit.state.base import BranchEnvironment, StateStore
from releasekit.state.documents import DOCUMENT_HINT, ENTRY_NAME, HeldLock, lock_scan, read_documents
from releasekit.state.ledger import live_release_id


@dataclass(frozen=True)
class EnvironmentSummary:
    name: str
    entries: int
    live_release: int | None
    branch: bool = False  # a branch environment's ledger (its own namespace)


@dataclass(frozen=True)
class StateSummary:
    where: str
    kind: Literal["folder", "s3"]
    location: StateLocation
    environments: tuple[EnvironmentSummary, ...]
    branches: tuple[BranchEnvironment, ...]
    checked_commits: tuple[tuple[str, int], ...]  # (git sha, check records), by sha
    artifacts: int
    artifact_bytes: int
    locks: tuple[HeldLock, ...]


def summarize(store: StateStore, location: StateLocation) -> StateSummary:
    keys = store.object_keys()
    artifacts = [key for key in keys if key.startswith("artifacts/")]
    commits: dict[str, int] = {}
    for key in keys:
        area, _, rest = key.partition("/")
        folder, _, name = rest.rpartition("/")
        if area == "checks" and folder and ENTRY_NAME.match(name):
            commits[folder] = commits.get(folder, 0) + 1
    locks, _ = lock_scan(store)
    return StateSummary(
        where=store.describe(),
        kind="s3" if location.url else "folder",
        location=location,
        environments=_environments(store),
        branches=tuple(store.branches()),
        checked_commits=tuple(sorted(commits.items())),
        artifacts=len(artifacts),
        artifact_bytes=sum(len(data or b"") for data in read_documents(store, artifacts)),
        locks=tuple(locks),
    )


def _environments(store: StateStore) -> tuple[EnvironmentSummary, ...]:
    """Declared environments' ledgers, then branch environments' (a torn-down branch's
    too, which no name resolves to any more)."""
    scan = store.scan_ledgers()
    if scan.unreadable:
        raise StateError(scan.unreadable[0].problem, hint=DOCUMENT_HINT)
    return tuple(
        EnvironmentSummary(env, len(entries), live_release_id(entries), branch)
        for branch, ledgers in ((False, scan.entries), (True, scan.branches))
        for env, entries in sorted(ledgers.items())
    )
