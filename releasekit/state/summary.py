"""What a state store holds, for `releasekit state show`: each environment's ledger and live
release, the branch environments, the commits with check records, the artifacts and the
locks. Only reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from releasekit.config.model import StateLocation
from releasekit.state.base import BranchEnvironment, StateStore
from releasekit.state.documents import ENTRY_NAME, HeldLock, lock_scan, read_documents
from releasekit.state.ledger import live_release_id


@dataclass(frozen=True)
class EnvironmentSummary:
    name: str
    entries: int
    live_release: int | None


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
        environments=tuple(_environment(store, env) for env in store.environments()),
        branches=tuple(store.branches()),
        checked_commits=tuple(sorted(commits.items())),
        artifacts=len(artifacts),
        artifact_bytes=sum(len(data or b"") for data in read_documents(store, artifacts)),
        locks=tuple(locks),
    )


def _environment(store: StateStore, env: str) -> EnvironmentSummary:
    entries = store.entries(env)
    return EnvironmentSummary(env, len(entries), live_release_id(entries))
