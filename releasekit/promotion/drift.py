"""Drift: an environment that no longer matches its own record.

In git, its branch (the desired state) points elsewhere than the commit it serves; in the
warehouse, its schema no longer serves its live release: the marker names another release,
or a view was dropped, repointed or added by hand, or a physical relation a view reads is
gone (engine.drift).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from releasekit.config.model import EnvironmentConfig
from releasekit.engine.drift import warehouse_drift as schema_drift
from releasekit.errors import ReleasekitError
from releasekit.gitops.repo import GitRepo
from releasekit.state.base import LedgerEntry
from releasekit.state.doctor import Check
from releasekit.state.ledger import hold_of, live_entry
from releasekit.warehouse.base import Warehouse
from releasekit.workspace import Workspace

Content = Callable[[str], str | None]  # a commit's content (its dbt project's git tree)


def git_drift(
    repo: GitRepo, env: EnvironmentConfig, live: LedgerEntry | None, *, content_of: Content | None = None
) -> list[str]:
    """The branch points elsewhere than the commit the live release serves. A rollback's
    hold explains a branch still at (the content of) what was rolled back from: no drift.
    A missing branch is no drift here (a promotion creates it): see `missing_branch`."""
    if env.branch is None or live is None:
        return []
    head = repo.branch_head(env.branch)
    deployed = live.git_sha.removesuffix("-dirty")
    if head is None or head == deployed:
        return []
    hold = hold_of(live)
    if hold is not None and hold.covers(head, content_of(head) if content_of else None):
        return []
    return [f"branch {env.branch} is at {head[:12]}, release {live.release_id} serves {deployed[:12]}"]


def missing_branch(repo: GitRepo, env: EnvironmentConfig, live: LedgerEntry | None) -> list[str]:
    """A promoted environment (one with `promotes_from`) serves a release while its branch
    (its desired state) does not exist, here or as the remote's copy: what it serves was
    never promoted. (A branch environment whose branch is gone is `env gc`'s business.)"""
    if env.promotes_from is None or env.branch is None or live is None:
        return []
    if repo.branch_head(env.branch) is not None:
        return []
    return [
        f"branch {env.branch} does not exist, release {live.release_id} serves {live.git_sha[:12]}"
        " (deployed without a promotion)"
    ]


def warehouse_drift(warehouse: Warehouse, env: EnvironmentConfig, live: LedgerEntry | None) -> list[str]:
    """How `env`'s schema differs from its live release, in words (engine.drift)."""
    return list(schema_drift(warehouse, env, live).problems)


def every_environment(workspace: Workspace) -> list[EnvironmentConfig]:
    """The declared environments, then the branch environments releasekit made."""
    branches = [workspace.branch_environment(record) for record in workspace.store.branches()]
    return [*workspace.config.environments.values(), *branches]


def drift_checks(workspace: Workspace) -> list[Check]:
    """doctor's warehouse checks: one per environment with a live release or a marker."""
    return [_drift_check(workspace, env) for env in every_environment(workspace)]


def _drift_check(workspace: Workspace, env: EnvironmentConfig) -> Check:
    name = f"warehouse {env.name}"
    try:
        live = live_entry(workspace.store.entries(env.name))
        with workspace.run_context(env).warehouse() as warehouse:
            found = schema_drift(warehouse, env, live)
    except ReleasekitError as exc:
        return Check(name, False, exc.message, exc.hint or "")
    if found:
        what = f"schema {env.schema} no longer serves its live release whole"
        hint = _repair_hint(env, workspace.is_declared(env))
        return Check(name, False, what, hint, found.problems, finding=True)
    if live is None:
        return Check(name, True, f"{env.schema}: nothing deployed")
    views = len(live.models)
    return Check(name, True, f"{env.schema} serves release {live.release_id} whole ({views} views)")


def _repair_hint(env: EnvironmentConfig, declared: bool) -> str:
    sync = f" (or `releasekit sync {env.name}`)" if declared and env.branch else ""
    return (
        f"`releasekit deploy {shlex.quote(env.name)}`{sync} puts back what is missing, rebuilding a "
        "dropped physical relation; `releasekit status` shows every environment"
    )
