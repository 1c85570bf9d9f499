"""`releasekit promote DST`: move the release SRC serves into DST, GitOps style.

1. Take the commit SRC's live release was deployed from (the ledger, not SRC's branch head,
   which may have moved on since).
2. Check DST's gates, with DST's rules at their strictest over its deployed commit, the
   promoted commit and the checked-out configuration (`policy`); a refusal changes nothing
   and says what to do. A refusal is a result (every gate with its verdict), not an error:
   a dry run shows it beside the plan, and the CLI ends a refused promotion with exit 1.
3. Under DST's lock: move DST's branch to that commit (fast-forward only, or a merge commit
   when DST's policy allows it), without touching the user's checkout.
4. Deploy DST from that commit in a temporary worktree, with DST's parameters. Models whose
   fingerprints equal SRC's reuse SRC's physical relations: with equal parameters nothing
   is built, dbt never starts (the graph SRC's deploy left is enough to plan), and DST
   serves the very tables SRC tested. If the deploy fails, DST's branch moves back.
5. The deploy switches DST atomically and records the release with the promotion (source,
   gates, approvals, branch update); then tag `release/<dst>/<id>` and push branch and tag
   when a remote is configured.

A run killed after the branch moved and before the switch leaves DST's branch ahead of what
DST serves: rerunning the promotion (the branch is already up to date) finishes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from releasekit.config.model import EnvironmentConfig, PromotionPolicy
from releasekit.dbtcore.session import NodeCallback
from releasekit.engine.deploy import DeployResult, deploy, plan_deploy
from releasekit.engine.graphs import stored_graph
from releasekit.engine.plan import Plan
from releasekit.engine.runtime import reconcile
from releasekit.environments.policy import project_content
from releasekit.errors import GitError, ReleasekitError
from releasekit.gitops.refs import BranchUpdate
from releasekit.promotion.drift import git_drift, warehouse_drift
from releasekit.promotion.gates import Gate, GateInputs, evaluate
from releasekit.promotion.policy import declared_at, strictest
from releasekit.state.base import CheckRecord, LedgerEntry
from releasekit.state.ledger import live_entry, require_live
from releasekit.workspace import Workspace


@dataclass(frozen=True)
class PromoteRequest:
    dst: EnvironmentConfig
    src: EnvironmentConfig
    approvals: tuple[str, ...] = ()
    dry_run: bool = False
    push: bool = True
    force_reason: str | None = None  # --force --reason: let a drifted destination through


@dataclass(frozen=True)
class PromoteResult:
    dst: str
    src: str
    src_release: int
    commit: str
    gates: tuple[Gate, ...]
    branch: str
    branch_update: str  # created | fast-forward | merge | up-to-date; dry run: what it would be
    deployed: DeployResult | None  # None on a dry run
    plan: Plan | None = None  # on a dry run: what the deploy would build and reuse
    tag: str | None = None
    pushed: tuple[str, ...] = ()  # refs pushed to the remote
    remote: str | None = None
    # A gate said no: what was refused, each failed gate's reason, where DST's rules were
    # read. Nothing changed (and on a dry run, nothing would). Empty: no refusal.
    refusal: str = ""

    @property
    def refused(self) -> bool:
        return any(not gate.passed and not gate.forced for gate in self.gates)

    @property
    def release_id(self) -> int | None:
        return self.deployed.release_id if self.deployed else None


def promote(
    workspace: Workspace, request: PromoteRequest, *, on_node: NodeCallback | None = None
) -> PromoteResult:
    dst, src = request.dst, request.src
    branch = _branch_of(dst)
    src_live = _promotable(workspace, src)
    commit = src_live.git_sha
    if request.dry_run:
        rules = _rules(workspace, dst, src_live)
        gates = _gates(workspace, request, src_live, rules)
        planned = _plan(workspace, dst, commit, src.name)
        moved = _would_move(workspace, branch, commit)
        refusal = _refusal(request, src_live, rules, gates)
        return PromoteResult(
            dst.name,
            src.name,
            src_live.release_id,
            commit,
            gates,
            branch,
            moved,
            None,
            planned,
            refusal=refusal,
        )
    # Everything that reads DST happens under its lock: a second promoter waits for (or is
    # refused by) the lock, never by what the first one is half-way through.
    with workspace.store.lock(dst.name, owner=workspace.repo.user()):
        # A CI runner's clone has DST's branch only as the remote's copy: start from that,
        # so a branch that moved on there is drift, not something to overwrite.
        workspace.repo.catch_up_branch(branch)
        _settle(workspace, dst)
        rules = _rules(workspace, dst, src_live)
        gates = _gates(workspace, request, src_live, rules)
        result = PromoteResult(dst.name, src.name, src_live.release_id, commit, gates, branch, "", None)
        refusal = _refusal(request, src_live, rules, gates)
        if refusal:
            return dataclasses.replace(result, refusal=refusal)
        update = workspace.repo.advance_branch(
            branch,
            commit,
            mode="merge" if rules.promotion.merge == "merge" else "ff-only",
            message=f"releasekit: promote {src.name} release {src_live.release_id} to {dst.name}",
        )
        result = dataclasses.replace(result, branch_update=update.kind)
        record = _record(request, src_live, gates, update)
        try:
            deployed = _deploy(
                workspace, dst, update.new_sha, record, on_node, resync=bool(request.force_reason)
            )
        except BaseException:
            workspace.repo.restore_branch(update)
            raise
        if not deployed.ok:
            workspace.repo.restore_branch(update)
            return dataclasses.replace(result, deployed=deployed)
    tag, remote, pushed = _publish(workspace, request, dst, update, deployed)
    return dataclasses.replace(result, deployed=deployed, tag=tag, remote=remote, pushed=pushed)


def _settle(workspace: Workspace, dst: EnvironmentConfig) -> None:
    """Settle a switch a killed promotion or deploy of DST announced, from the warehouse's
    marker, before the gates read DST."""
    run = workspace.run_context(dst)
    with run.warehouse() as warehouse:
        reconcile(run, warehouse)


def _branch_of(dst: EnvironmentConfig) -> str:
    if dst.branch is None:
        raise ReleasekitError(
            f"environment {dst.name!r} names no git branch, and a promotion moves a commit into one",
            hint=f"set `branch:` in {dst.name}'s environment file",
        )
    return dst.branch


def _promotable(workspace: Workspace, src: EnvironmentConfig) -> LedgerEntry:
    live = require_live(workspace.store.entries(src.name), src.name, "promote")
    if live.git_sha.endswith("-dirty"):
        raise GitError(
            f"{src.name} release {live.release_id} was deployed from uncommitted changes ({live.git_sha})",
            hint=f"commit them and deploy {src.name} again: only a commit can be promoted",
        )
    return live


@dataclass(frozen=True)
class _Rules:
    dst: EnvironmentConfig  # DST with each promotion rule at its strictest
    read_from: tuple[str, ...]  # where they were read, for a refusal

    @property
    def promotion(self) -> PromotionPolicy:
        return self.dst.promotion


def _rules(workspace: Workspace, dst: EnvironmentConfig, src_live: LedgerEntry) -> _Rules:
    """DST with its promotion rules at their strictest over the checked-out configuration,
    DST's deployed commit and the promoted commit."""
    dst_live = live_entry(workspace.store.entries(dst.name))
    commits = [(f"{dst.name}'s deployed commit", dst_live.git_sha)] if dst_live is not None else []
    commits.append(("the promoted commit", src_live.git_sha))
    declared = declared_at(workspace.repo, workspace.config.root, dst.name, commits)
    return _Rules(strictest(dst, declared), ("your checkout", *(d.where for d in declared)))


def _gates(
    workspace: Workspace, request: PromoteRequest, src_live: LedgerEntry, rules: _Rules
) -> tuple[Gate, ...]:
    dst = rules.dst
    dst_live = live_entry(workspace.store.entries(dst.name))
    with workspace.run_context(dst).warehouse() as warehouse:
        drift = warehouse_drift(warehouse, dst, dst_live)
    # DST's branch already at the promoted commit is no drift: a promotion of that commit
    # was interrupted after moving it, and this one finishes it.
    if dst.branch is None or workspace.repo.branch_head(dst.branch) != src_live.git_sha:
        drift += git_drift(workspace.repo, dst, dst_live, content_of=workspace.content_of)
    content = project_content(workspace.repo, workspace.config.dbt_project_dir, src_live.git_sha)
    given = GateInputs(
        dst=dst,
        src=request.src,
        src_live=src_live,
        checks=_recorded_checks(workspace, src_live.git_sha, content),
        approvals=request.approvals,
        who=workspace.repo.user(),
        drift=drift,
        content=content,
    )
    gates = evaluate(given)
    if request.force_reason:
        gates = tuple(
            Gate(g.name, g.passed, g.detail, forced=True) if g.name == "drift" and not g.passed else g
            for g in gates
        )
    return gates


def _refusal(request: PromoteRequest, src_live: LedgerEntry, rules: _Rules, gates: Sequence[Gate]) -> str:
    """What a refusal says: the promotion, each gate that said no and what to do, and
    where DST's rules were read. Empty when no gate refuses."""
    refused = [g for g in gates if not g.passed and not g.forced]
    if not refused:
        return ""
    reasons = "\n  ".join(f"{g.name}: {g.detail}" for g in refused)
    dst = rules.dst.name
    what = f"promotion of {request.src.name} release {src_live.release_id} to {dst}"
    where = ", ".join(rules.read_from)
    return f"{what} refused; nothing changed:\n  {reasons}\n  ({dst}'s rules: the strictest of {where})"


def _recorded_checks(workspace: Workspace, sha: str, content: str | None) -> list[CheckRecord]:
    """Checks of the commit, then checks of other commits whose dbt project is the same (a
    squash or merge commit lands content that was checked on its branch's head)."""
    found = workspace.store.checks(sha)
    if content is not None:
        found += [r for r in workspace.store.checks_with_content(content) if r.git_sha != sha]
    return found


def _would_move(workspace: Workspace, branch: str, commit: str) -> str:
    repo = workspace.repo
    head = repo.branch_head(branch)
    if head is None:
        return "created"
    if repo.is_ancestor(commit, head):
        return "up-to-date"
    return "fast-forward" if repo.is_ancestor(head, commit) else "merge (branches diverged)"


def _record(
    request: PromoteRequest, src_live: LedgerEntry, gates: Sequence[Gate], update: BranchUpdate
) -> dict[str, object]:
    record: dict[str, object] = {
        "from": request.src.name,
        "from_release": src_live.release_id,
        "commit": src_live.git_sha,
        "gates": {g.name: ("forced" if g.forced else "passed") for g in gates},
        "approvals": sorted(set(request.approvals)),
        "branch": update.branch,
        "branch_update": update.kind,
        "branch_head": update.new_sha,
    }
    if request.force_reason:
        record["forced_because"] = request.force_reason
    return record


def _deploy(
    workspace: Workspace,
    dst: EnvironmentConfig,
    commit: str,
    record: dict[str, object],
    on_node: NodeCallback | None,
    *,
    resync: bool,
) -> DeployResult:
    with workspace.repo.worktree_at(commit) as tree:
        run = workspace.run_context(dst, checkout=(tree, commit), on_node=on_node)
        run = dataclasses.replace(run, promoted_from=str(record["from"]))
        graph = stored_graph(workspace.store, commit, dst.target, dst.vars)
        # Forced past drift: switch even if nothing changed, so DST serves its release whole again.
        return deploy(run, locked=True, graph=graph, promotion=record, resync=resync, cause="promote")


def _plan(workspace: Workspace, dst: EnvironmentConfig, commit: str, source: str) -> Plan:
    with workspace.repo.worktree_at(commit) as tree:
        run = dataclasses.replace(workspace.run_context(dst, checkout=(tree, commit)), promoted_from=source)
        return plan_deploy(run, graph=stored_graph(workspace.store, commit, dst.target, dst.vars))


def _publish(
    workspace: Workspace,
    request: PromoteRequest,
    dst: EnvironmentConfig,
    update: BranchUpdate,
    deployed: DeployResult,
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """Tag the release DST now serves (also one an interrupted promotion switched but did
    not tag) and push branch and tag."""
    live = live_entry(workspace.store.entries(dst.name))
    if live is None or live.git_sha != update.new_sha:
        return None, None, ()
    repo = workspace.repo
    tag = f"release/{dst.name}/{live.release_id}"
    repo.tag_release(tag, update.new_sha, f"releasekit: {dst.name} release {live.release_id}")
    remote = repo.remote_for(update.branch) if request.push else None
    if remote is None:
        return tag, None, ()
    refs = (f"refs/heads/{update.branch}", f"refs/tags/{tag}")
    try:
        repo.push(remote, refs)
    except GitError as exc:
        raise GitError(
            f"{dst.name} now serves release {live.release_id} (commit {update.new_sha[:12]}), but "
            f"pushing {update.branch} and {tag} to {remote} failed: {exc.message}",
            hint=f"the release is recorded and tagged here; push them by hand: git push --atomic "
            f"{remote} {' '.join(refs)}" + (f" ({exc.hint})" if exc.hint else ""),
        ) from None
    return tag, remote, refs
