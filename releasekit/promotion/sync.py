"""`releasekit sync ENV`: reconcile the GitOps way. ENV's branch is its desired state; when
its head differs from the commit ENV serves (someone merged by hand, a CI job pushed),
deploy the head, from a temporary worktree, under ENV's lock. Idempotent: a second sync of
the same commit finds nothing to do, unless ENV's warehouse drifted from its release (a
view, the marker or a physical relation dropped by hand): then the deploy repairs it.

A rollback holds ENV (like GitOps controllers that suspend automatic sync after a manual
rollback): while the branch head brings only what was rolled back from (the same commit,
or another with the same dbt project tree: an empty commit, a rebase), sync leaves ENV
alone and says so. A head with different content, or `--force`, deploys and ends the hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from releasekit.config.model import EnvironmentConfig
from releasekit.dbtcore.session import NodeCallback
from releasekit.engine.deploy import DeployResult, deploy
from releasekit.engine.drift import warehouse_drift
from releasekit.engine.graphs import stored_graph
from releasekit.engine.runtime import reconcile
from releasekit.errors import GitError, ReleasekitError
from releasekit.state.base import LedgerEntry
from releasekit.state.ledger import Hold, hold_of, live_entry, pending_switch
from releasekit.workspace import Workspace


@dataclass(frozen=True)
class SyncResult:
    env: str
    branch: str
    head: str
    deployed_before: str | None  # the commit the environment served before
    deployed: DeployResult | None  # None: it already served the head, or a hold kept it
    hold: Hold | None = None  # the rollback's hold in force when sync looked
    held: bool = False  # the hold kept sync from deploying the head

    @property
    def changed(self) -> bool:
        return self.deployed is not None and self.deployed.release_id is not None


def sync(
    workspace: Workspace, env: EnvironmentConfig, *, force: bool = False, on_node: NodeCallback | None = None
) -> SyncResult:
    if env.branch is None:
        raise ReleasekitError(
            f"environment {env.name!r} names no git branch to sync from",
            hint=f"set `branch:` in {env.name}'s environment file",
        )
    head = workspace.repo.resolve(f"refs/heads/{env.branch}")
    if head is None:
        raise GitError(
            f"branch {env.branch!r} of environment {env.name!r} does not exist in this clone",
            hint=f"fetch it (git fetch origin {env.branch}:{env.branch}) or promote into {env.name} first",
        )
    # Deciding and deploying under one hold of the lock: a rollback cannot slip in between.
    with workspace.store.lock(env.name, owner=workspace.repo.user()):
        _settle(workspace, env)
        live = live_entry(workspace.store.entries(env.name))
        before = live.git_sha if live else None
        hold = hold_of(live)
        result = SyncResult(env.name, env.branch, head, before, None, hold)
        if hold is not None and not force and hold.covers(head, workspace.content_of(head)):
            return SyncResult(env.name, env.branch, head, before, None, hold, held=True)
        if before == head and (hold is None or not force) and not _drifted(workspace, env, live):
            return result
        cause = "sync --force" if force and hold is not None else "sync"
        with workspace.repo.worktree_at(head) as tree:
            run = workspace.run_context(env, checkout=(tree, head), on_node=on_node)
            graph = stored_graph(workspace.store, head, env.target, env.vars)
            deployed = deploy(run, locked=True, graph=graph, cause=cause)
        return SyncResult(env.name, env.branch, head, before, deployed, hold)


def _drifted(workspace: Workspace, env: EnvironmentConfig, live: LedgerEntry | None) -> bool:
    """The warehouse no longer serves the live release whole: the deploy repairs it."""
    with workspace.run_context(env).warehouse() as warehouse:
        return bool(warehouse_drift(warehouse, env, live))


def _settle(workspace: Workspace, env: EnvironmentConfig) -> None:
    """Settle a switch a killed run announced (a rollback's, say) before reading the hold.
    Only then is the warehouse opened: a sync with nothing to do never touches it."""
    if pending_switch(workspace.store.entries(env.name)) is None:
        return
    run = workspace.run_context(env)
    with run.warehouse() as warehouse:
        reconcile(run, warehouse)
