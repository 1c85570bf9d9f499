"""`releasekit status`: every environment, its live release, and how far it drifted.

Drift is read the way promotions and `doctor` read it (`drift`): in git, a branch that
points elsewhere than the deployed commit, or is missing; in the warehouse, a schema that
no longer serves its live release whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from releasekit.config.model import EnvironmentConfig
from releasekit.promotion.drift import every_environment, git_drift, missing_branch, warehouse_drift
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry
from releasekit.state.ledger import Hold, active_hold, live_entry
from releasekit.warehouse.base import ReleaseMarker
from releasekit.workspace import Workspace


@dataclass(frozen=True)
class EnvironmentStatus:
    env: str
    schema: str
    live: LedgerEntry | None
    marker: ReleaseMarker | None
    releases: int
    branch: str | None = None  # the git branch holding its desired state
    branch_head: str | None = None
    git_drift: tuple[str, ...] = ()  # the branch is missing or points elsewhere than the deployed commit
    warehouse_drift: tuple[str, ...] = ()  # the schema no longer serves the live release, named
    hold: Hold | None = None  # a rollback holds it: `sync` leaves it alone
    # The live release's `deploy --force` record (reason, branch, commit) and who forced it.
    forced: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    branch_environment: bool = False

    @property
    def drift(self) -> bool:
        return bool(self.warehouse_drift)


def statuses(workspace: Workspace) -> list[EnvironmentStatus]:
    """Every declared and branch environment, in that order."""
    workspace.refuse_shadowed()
    return [environment_status(workspace, env) for env in every_environment(workspace)]


def environment_status(workspace: Workspace, env: EnvironmentConfig) -> EnvironmentStatus:
    """`env`'s live release, and whether its warehouse serves it whole (marker, views, and
    the physical relations they read) and its branch points at it."""
    repo = workspace.repo
    run = workspace.run_context(env)
    entries = workspace.store.entries(env.name)
    live = live_entry(entries)
    with run.warehouse() as warehouse:
        marker = warehouse.read_marker(env.schema)
        found = tuple(warehouse_drift(warehouse, env, live))
    head = repo.resolve(f"refs/heads/{env.branch}") if env.branch else None
    moved = git_drift(repo, env, live, content_of=workspace.content_of)
    return EnvironmentStatus(
        env.name,
        env.schema,
        live,
        marker,
        len(ledger.successful_release_ids(entries)),
        env.branch,
        head,
        (*missing_branch(repo, env, live), *moved),
        found,
        hold=active_hold(entries),
        forced=_forced_live(entries, live),
        branch_environment=not workspace.is_declared(env),
    )


def _forced_live(entries: Sequence[LedgerEntry], live: LedgerEntry | None) -> Mapping[str, Any]:
    """The `deploy --force` record of the release live now (a rollback to it included)."""
    if live is None:
        return {}
    made = [e for e in entries if e.kind == "deploy" and e.release_id == live.release_id and e.forced]
    return {**made[-1].forced, "who": made[-1].who} if made else {}
