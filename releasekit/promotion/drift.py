"""Drift: an environment that no longer matches its own record.

In git, its branch (the desired state) points elsewhere than the commit it serves; in the
warehouse, its schema no longer serves its live release: the marker names another release,
or a view was dropped, repointed or added by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from releasekit.config.model import EnvironmentConfig
from releasekit.gitops.refs import branch_head
from releasekit.state.base import LedgerEntry
from releasekit.state.ledger import hold_of
from releasekit.warehouse.base import Warehouse

Content = Callable[[str], str | None]  # a commit's content (its dbt project's git tree)


def git_drift(
    root: Path, env: EnvironmentConfig, live: LedgerEntry | None, *, content_of: Content | None = None
) -> list[str]:
    """The branch points elsewhere than the commit the live release serves. A rollback's
    hold explains a branch still at (the content of) what was rolled back from: no drift.
    A missing branch is no drift here (a promotion creates it): see `missing_branch`."""
    if env.branch is None or live is None:
        return []
    head = branch_head(root, env.branch)
    deployed = live.git_sha.removesuffix("-dirty")
    if head is None or head == deployed:
        return []
    hold = hold_of(live)
    if hold is not None and hold.covers(head, content_of(head) if content_of else None):
        return []
    return [f"branch {env.branch} is at {head[:12]}, release {live.release_id} serves {deployed[:12]}"]


def missing_branch(root: Path, env: EnvironmentConfig, live: LedgerEntry | None) -> list[str]:
    """A promoted environment (one with `promotes_from`) serves a release while its branch
    (its desired state) does not exist, here or as the remote's copy: what it serves was
    never promoted. (A branch environment whose branch is gone is `env gc`'s business.)"""
    if env.promotes_from is None or env.branch is None or live is None:
        return []
    if branch_head(root, env.branch) is not None:
        return []
    return [
        f"branch {env.branch} does not exist, release {live.release_id} serves {live.git_sha[:12]}"
        " (deployed without a promotion)"
    ]


def warehouse_drift(warehouse: Warehouse, env: EnvironmentConfig, live: LedgerEntry | None) -> list[str]:
    marker = warehouse.read_marker(env.schema)
    if live is None:
        return [f"schema {env.schema} holds release {marker.release_id}, the ledger none"] if marker else []
    if marker is None:
        return [f"schema {env.schema} has no release marker (release {live.release_id} expected)"]
    found: list[str] = []
    if marker.release_id != live.release_id:
        found.append(f"schema {env.schema} serves release {marker.release_id}, the ledger {live.release_id}")
    wanted = {version.name: version.relation for version in live.models.values()}
    views = warehouse.view_targets(env.schema)
    missing = sorted(set(wanted) - set(views))
    moved = sorted(name for name in set(wanted) & set(views) if views[name] != wanted[name])
    extra = sorted(set(views) - set(wanted))
    for label, names in (("missing", missing), ("repointed", moved), ("not in the release", extra)):
        if names:
            found.append(f"{label} view(s) in {env.schema}: {', '.join(names[:10])}")
    return found
