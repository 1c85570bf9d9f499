"""releasekit's Python API: what the CLI and the tests call.

It never prints and never exits: results come back as typed values, and what could not
run raises a `releasekit.errors.ReleasekitError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from releasekit import __version__
from releasekit.checks.audit import logic_audit
from releasekit.checks.report import CHECK_ORDER, CheckName, CheckReport, CheckResult
from releasekit.checks.run import CheckRequest, lint_files, run_checks
from releasekit.ci import DEFAULT_PYTHON
from releasekit.ci.comment import CommentResult, post_comment, read_body
from releasekit.ci.context import ci_context
from releasekit.ci.init import CiInitResult, init_ci
from releasekit.config.loader import find_root, load_config
from releasekit.config.model import ProjectConfig
from releasekit.config.scaffold import InitResult, find_dbt_project, init_project
from releasekit.dbtcore.profile import profile_targets
from releasekit.dbtcore.session import NodeCallback
from releasekit.engine.deploy import DeployResult, plan_deploy
from releasekit.engine.deploy import deploy as engine_deploy
from releasekit.engine.gc import GcResult, collect_garbage
from releasekit.engine.graphs import stored_graph
from releasekit.engine.plan import Plan
from releasekit.engine.quality import MetricSeries, metric_series
from releasekit.engine.refresh import RefreshResult
from releasekit.engine.refresh import refresh as engine_refresh
from releasekit.engine.rollback import RollbackResult
from releasekit.engine.rollback import rollback as engine_rollback
from releasekit.environments import lifecycle
from releasekit.environments.branches import DownResult, UpResult
from releasekit.environments.lifecycle import BRANCH_WAIT_SECONDS, BranchStatus
from releasekit.errors import ConfigError, NotFoundError, RefreshError, ReleasekitError
from releasekit.gitops.repo import GitRepo
from releasekit.promotion.drift import drift_checks
from releasekit.promotion.guard import guard_deploy, plan_warning
from releasekit.promotion.promote import PromoteRequest, PromoteResult
from releasekit.promotion.promote import promote as run_promotion
from releasekit.promotion.status import EnvironmentStatus
from releasekit.promotion.status import statuses as environment_statuses
from releasekit.promotion.sync import SyncResult
from releasekit.promotion.sync import sync as run_sync
from releasekit.state.base import LedgerEntry, LockInfo
from releasekit.state.doctor import Check, DoctorReport, diagnose
from releasekit.state.ledger import Hold, require_live
from releasekit.state.migrate import MigrationResult, migrate, switch_line
from releasekit.state.open import open_store_at
from releasekit.state.summary import StateSummary, summarize
from releasekit.workspace import Workspace

__all__ = [
    "BRANCH_WAIT_SECONDS",
    "BranchStatus",
    "CheckReport",
    "CiInitResult",
    "CommentResult",
    "DeployResult",
    "DoctorReport",
    "DownResult",
    "EnvironmentStatus",
    "GcResult",
    "Hold",
    "InitResult",
    "MetricSeries",
    "MigrationResult",
    "NodeCallback",
    "Plan",
    "PromoteResult",
    "RefreshResult",
    "RollbackResult",
    "StateSummary",
    "SyncResult",
    "UpResult",
    "Workspace",
    "check",
    "ci_comment",
    "ci_init",
    "deploy",
    "doctor",
    "env_down",
    "env_down_if_up",
    "env_gc",
    "env_list",
    "env_up",
    "gc",
    "init",
    "lint",
    "plan",
    "promote",
    "refresh",
    "releases",
    "rollback",
    "spc",
    "state_migrate",
    "state_show",
    "status",
    "sync",
    "unlock",
]


def init(start: Path | None = None, *, force: bool = False) -> InitResult:
    """Write releasekit.yml and the reference environments into the git repository holding
    `start` (default: the working directory), for its one dbt project and its profile's
    targets. Returns the files written. Raises ProjectError when the repository holds no
    single dbt project, ConfigError when the files exist (unless `force`), GitError outside
    a repository."""
    repo = GitRepo((start or Path.cwd()).resolve())
    project_dir = find_dbt_project(repo.root)
    targets = profile_targets(project_dir, None)
    return init_project(
        repo.root,
        dbt_project_dir=project_dir,
        target_names=targets.names,
        default_target=targets.default,
        default_branch=repo.default_branch(),
        force=force,
    )


def plan(workspace: Workspace, env: str | None = None) -> Plan:
    """What a deploy of the checkout into `env` (default: the current branch's) would build,
    reuse and switch. Where `deploy` would refuse it (a promoted environment and a commit
    that is not its branch head), the plan says so in its warnings and still shows what the
    deploy would do. Returns the plan; nothing changes. Raises NotFoundError for an unknown
    environment, ProjectError when dbt cannot parse the project."""
    environment = workspace.environment(env)
    run = workspace.run_context(environment, builds=True)
    planned = plan_deploy(run)
    warning = plan_warning(workspace, environment, run.git_sha)
    return planned if warning is None else dataclasses.replace(planned, warnings=(warning,))


def deploy(
    workspace: Workspace,
    env: str | None = None,
    *,
    allow_dirty: bool = False,
    force: bool = False,
    reason: str | None = None,
    accept: Sequence[str] = (),
    on_node: NodeCallback | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> DeployResult:
    """Deploy the checkout into `env` (default: the current branch's): build what changed,
    test it, switch atomically. An environment with `promotes_from` takes only its branch
    head (what was promoted into it); another commit is refused unless `force` with a
    `reason`, which the release records. `accept` names models whose data is published
    whatever statistical process control finds (with `reason`, recorded; their history
    starts again). A deploy ends a rollback's hold. `on_wait` hears once when the deploy
    waits for another run building a relation it needs too.
    Returns the deploy's result (a failed build is a result, not an error). Raises
    UnpromotedDeployError, DirtyWorktreeError, ConfigError (`force` or `accept` without
    `reason`), LockedError when another run holds `env`, WarehouseError."""
    flags = {(True, False): "--force", (False, True): "--accept"}.get(
        (force, bool(accept)), "--force or --accept"
    )
    _check_reason(force, accept, reason, flags=flags)
    environment = workspace.environment(env)
    run = workspace.run_context(environment, builds=True, on_node=on_node, allow_dirty=allow_dirty)
    forced = guard_deploy(workspace, environment, run.git_sha, reason=reason if force else None)
    accepted = dict.fromkeys(accept, reason or "")
    return engine_deploy(dataclasses.replace(run, on_wait=on_wait), forced=forced, accept=accepted)


def _check_reason(force: bool, accept: Sequence[str], reason: str | None, *, flags: str = "--force") -> None:
    """`flags` (--force, --accept) each need a --reason (the ledger records it); --reason
    alone would be recorded nowhere."""
    if (force or bool(accept)) != bool(reason):
        example = '--accept orders --reason "the spring sale doubled the orders"'
        raise ConfigError(
            f"{flags} needs --reason, and --reason goes with {flags}",
            hint="for example: "
            + (
                example
                if flags == "--accept"
                else '--force --reason "hotfix applied by hand in prod, see INC-42"'
            ),
        )


def refresh(
    workspace: Workspace,
    env: str | None = None,
    *,
    select: Sequence[str] = (),
    dry_run: bool = False,
    accept: Sequence[str] = (),
    reason: str | None = None,
    on_node: NodeCallback | None = None,
) -> RefreshResult:
    """Run `env`'s live code (the commit and parameters of its live release) on the data as
    it is now: write new versions of the models whose sources changed, audit them (dbt
    tests, logic tests), and publish them atomically only if the audit passed. `select`
    names models to refresh (with their descendants); `dry_run` plans and changes nothing.
    `accept` names models whose new data is published whatever statistical process
    control finds in it, for `reason` (recorded; their history starts again there).
    Returns the result (a held-back refresh is a result, not an error). Raises
    RefreshError (a branch environment, a live release from uncommitted changes or that
    no longer reproduces, a source that cannot be read), NoLiveReleaseError,
    NotFoundError (`select`), LockedError, WarehouseError."""
    _check_reason(False, accept, reason, flags="--accept")
    environment = workspace.environment(env)
    if not workspace.is_declared(environment):
        raise RefreshError(
            f"{environment.name!r} is a branch environment: it holds its data still while its code changes, "
            "so a difference in its checks is the code's doing",
            hint="refresh the environment it branched from (for example `releasekit refresh dev`); "
            f"then `releasekit env up {environment.name} --rebase` moves the branch onto its data",
        )
    live = require_live(workspace.store.entries(environment.name), environment.name, "refresh")
    if live.git_sha.endswith("-dirty"):
        raise RefreshError(
            f"release {live.release_id} of {environment.name!r} was deployed from uncommitted changes "
            f"({live.git_sha}): its code is in no commit, so a refresh cannot run it again",
            hint=f"deploy a commit (`releasekit deploy {environment.name}`), then refresh",
        )
    at_live = dataclasses.replace(environment, vars=dict(live.params))
    graph = stored_graph(workspace.store, live.git_sha, at_live.target, at_live.vars)
    with _checkout_of(workspace, live.git_sha) as checkout:
        run = workspace.run_context(at_live, builds=True, checkout=checkout, on_node=on_node)
        audit = logic_audit(run.dbt.settings.project_dir if run.dbt else Path("."), environment.schema)
        accepted = dict.fromkeys(accept, reason or "")
        return engine_refresh(run, select=select, graph=graph, audit=audit, dry_run=dry_run, accept=accepted)


@contextlib.contextmanager
def _checkout_of(workspace: Workspace, sha: str) -> Iterator[tuple[Path, str] | None]:
    """None when the working tree is that commit, unchanged (dbt's parse cache stays warm);
    else a temporary worktree at it."""
    if workspace.repo.head_sha() == sha and not workspace.dirty_files():
        yield None
        return
    with workspace.repo.worktree_at(sha) as tree:
        yield tree, sha


def rollback(workspace: Workspace, env: str | None = None, *, to: int | None = None) -> RollbackResult:
    """Switch `env` back to retained release `to` (default: the one before live), and hold
    it: `sync` leaves it alone until its branch brings content other than what was rolled
    back from. Returns what was switched. Raises NoLiveReleaseError, NotFoundError (no such
    retained release, or its relations are gone), LockedError."""
    run = workspace.run_context(workspace.environment(env))
    return engine_rollback(run, to, content_of=workspace.content_of)


def releases(workspace: Workspace, env: str | None = None) -> list[LedgerEntry]:
    """Returns `env`'s ledger entries (default: the current branch's environment), oldest
    first. Raises NotFoundError for an unknown environment, StateError for a ledger that
    does not read."""
    return workspace.store.entries(workspace.environment(env).name)


def spc(workspace: Workspace, env: str | None = None, model: str | None = None) -> list[MetricSeries]:
    """Statistical process control of `env` (default: the current branch's environment):
    every judged metric of every model it measured (or of `model`, a name or unique id),
    each point judged against the published points before it. Raises NotFoundError for an
    unknown environment, or a model it has no measurement of; StateError."""
    environment = workspace.environment(env)
    found = metric_series(workspace.store.metrics(environment.name), environment.spc)
    if model is None:
        return found
    chosen = [s for s in found if model in (s.name, s.unique_id)]
    if not chosen:
        known = sorted({s.name for s in found})
        raise NotFoundError(
            f"{environment.name!r} has no measurement of a model named {model!r}",
            hint=(f"measured models: {', '.join(known[:10])}" + (", ..." if len(known) > 10 else ""))
            if known
            else f"deploy or refresh {environment.name} to measure its models",
        )
    return chosen


def unlock(workspace: Workspace, env: str, lock_id: str) -> LockInfo:
    """Clear `env`'s lock left by a run that died, if `lock_id` is its id. Returns what was
    cleared. `env` is not checked against the configuration: a branch environment whose
    record is gone can still have left a lock. Raises NotFoundError when nothing holds the
    lock, LockMismatchError when another id does."""
    return workspace.store.break_lock(env, lock_id)


def status(workspace: Workspace) -> list[EnvironmentStatus]:
    """Every declared and branch environment: its live release, and whether its warehouse
    serves it whole (marker, views, and the physical relations they read) and its branch
    points at it. Returns one status per environment. Raises ConfigError when a branch
    environment shadows a declared one, WarehouseError, StateError."""
    return environment_statuses(workspace)


def promote(
    workspace: Workspace,
    dst: str,
    *,
    src: str | None = None,
    approvals: Collection[str] = (),
    dry_run: bool = False,
    push: bool = True,
    force: bool = False,
    reason: str | None = None,
    on_node: NodeCallback | None = None,
) -> PromoteResult:
    """Promote the release `src` (default: `dst`'s promotes_from) serves into `dst`: gates,
    then DST's branch moves to that commit, DST deploys it and switches, tag and push.
    Returns the result, every gate with its verdict: a refusal (a gate said no) is a
    result whose `refused` is true and whose `refusal` says why; nothing changed then. On
    a dry run, nothing changes either way, and the result carries the plan. Raises
    ConfigError (no source, `force` without `reason`), NoLiveReleaseError (the source
    serves nothing), GitError, LockedError."""
    dst_env = workspace.config.environment(dst)
    source = src or dst_env.promotes_from
    workspace.refuse_shadowed([dst, *([source] if source else [])])
    if source is None:
        raise ConfigError(
            f"{dst!r} has no promotes_from, so there is nothing to promote from",
            hint=f"name the source: releasekit promote {dst} --from ENV",
        )
    _check_reason(force, (), reason)
    src_env = workspace.config.environment(source)
    request = PromoteRequest(dst_env, src_env, tuple(approvals), dry_run, push, reason if force else None)
    return run_promotion(workspace, request, on_node=on_node)


def sync(
    workspace: Workspace, env: str, *, force: bool = False, on_node: NodeCallback | None = None
) -> SyncResult:
    """Deploy `env`'s branch head when it differs from what `env` serves (someone merged by
    hand, a CI job pushed). A second sync of the same commit does nothing. After a rollback,
    the environment is held: sync leaves it alone until its branch brings content other
    than what was rolled back from; `force` deploys the head anyway and ends the hold.
    Returns what it found and deployed. Raises NotFoundError, GitError, LockedError."""
    chosen = workspace.config.environment(env)
    workspace.refuse_shadowed([chosen.name])
    return run_sync(workspace, chosen, force=force, on_node=on_node)


def gc(workspace: Workspace, *, dry_run: bool = False) -> list[GcResult]:
    """Drop the physical relations no retained release of a declared or branch environment
    uses (on a dry run, only list them). Returns one result per warehouse schema. Raises
    ConfigError when a branch environment shadows a declared one, LockedError."""
    workspace.refuse_shadowed()
    declared = list(workspace.config.environments.values())
    branches = [workspace.branch_environment(record) for record in workspace.store.branches()]
    return collect_garbage([workspace.run_context(env) for env in declared + branches], dry_run=dry_run)


# --- branch environments ------------------------------------------------------------------


def env_up(
    workspace: Workspace,
    branch: str | None = None,
    *,
    pin: bool = False,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
    rebase: bool = False,
) -> UpResult:
    """Bring up `branch`'s environment (default: the current branch's): views onto the base
    environment's live release, in a schema named from the branch. Nothing is built; a
    second `env_up` changes nothing, unless `rebase`: then an environment that is up moves
    onto the base's current release and data (its own changes are deployed again from
    there by the next deploy or check). Returns its record and release. Raises ConfigError
    for a declared environment's branch or a schema clash with another branch,
    NoLiveReleaseError when the base serves nothing, LockedError."""
    return lifecycle.up(workspace, branch, pin=pin, wait=wait, on_wait=on_wait, rebase=rebase)


def env_down(
    workspace: Workspace,
    branch: str | None = None,
    *,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> DownResult:
    """Drop `branch`'s environment (default: the current branch's): its schema and its
    registry record. Physical relations only it used are left to `releasekit gc`. Returns
    what was dropped. Raises NotFoundError when releasekit made no environment for it,
    ConfigError for a declared environment's branch, LockedError."""
    return lifecycle.down(workspace, branch, wait=wait, on_wait=on_wait)


def env_down_if_up(
    workspace: Workspace,
    branch: str | None = None,
    *,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> DownResult | None:
    """`env_down`, except that a branch with no environment is no error but None: a pull
    request closed before its check brought one up. Returns what was dropped, or None.
    Raises ConfigError for a declared environment's branch, LockedError."""
    return lifecycle.down_if_up(workspace, branch, wait=wait, on_wait=on_wait)


def env_list(workspace: Workspace, *, now: datetime | None = None) -> list[BranchStatus]:
    """Returns every branch environment releasekit made: its record, whether its branch
    still exists, expiry as of `now` (default: the clock), live release. A ledger that does
    not read is named in its status, not raised. Raises StateError when the registry does not
    read."""
    return lifecycle.statuses(workspace, now)


def env_gc(workspace: Workspace, *, dry_run: bool = False, now: datetime | None = None) -> list[BranchStatus]:
    """Drop branch environments whose branch is gone (locally and from every remote-tracking
    ref) or whose expiry passed (unless pinned). Returns what it dropped (or would drop).
    One whose ledger does not read is left for its owner to repair (`env list` names it).
    Raises LockedError, WarehouseError."""
    return lifecycle.collect(workspace, dry_run=dry_run, now=now)


# --- checks ---------------------------------------------------------------------------------


def check(
    workspace: Workspace,
    env: str | None = None,
    *,
    base: str | None = None,
    only: Collection[CheckName] = CHECK_ORDER,
    lint_all: bool = False,
    on_node: NodeCallback | None = None,
    on_step: Callable[[str], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> CheckReport:
    """Lint, build and test, logic tests, impact and diff of a branch (default: the current
    one) in its branch environment, which is brought up first if it is not; against `base`
    (default: the environment the branch environment came from). The outcome is recorded
    in the state store against the commit, with what it covered and the content it verified
    (the dbt project's git tree), for promotion gates. Returns the report (failing checks
    are findings in it). Raises ConfigError for a declared environment's branch,
    NoLiveReleaseError when the base serves nothing, ProjectError."""
    branch = workspace.current_branch() if env is None else env
    record = lifecycle.ensure_up(workspace, branch, on_wait=on_wait)
    base_env = workspace.config.environment(base or record.base)
    request = CheckRequest(workspace.branch_environment(record), base_env, frozenset(only), lint_all)
    run = run_checks(workspace, request, on_node=on_node, on_step=on_step)
    workspace.store.record_check(run.record(workspace.repo.user()))
    return run.report


def lint(workspace: Workspace, files: Sequence[Path], *, env: str | None = None) -> CheckResult:
    """sqlfluff over `files` as `releasekit check` lints (the project's config, the dbt
    templating, `env`'s vars; default: the branch environments' base). Returns the lint
    check's result (violations are findings). Raises ProjectError when dbt cannot load the
    project, NotFoundError for an unknown environment or a file that does not exist (a
    mistyped path must not pass as "nothing to lint")."""
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise NotFoundError(
            f"no such file: {', '.join(missing)}",
            hint="check the path (it is relative to where you run releasekit); nothing was linted",
        )
    chosen = workspace.config.environment(env or workspace.config.branches.base)
    return lint_files(workspace, chosen, files)


# --- the state store: show, migrate, doctor -------------------------------------------------


def state_show(workspace: Workspace) -> StateSummary:
    """Where the state lives, and what it holds: ledgers, branch environments, check
    records, artifacts, locks. Returns the summary. Raises StateError when the store does
    not read."""
    return summarize(workspace.store, workspace.config.state)


def state_migrate(
    workspace: Workspace,
    to: str,
    *,
    source: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> MigrationResult:
    """Copy every state document from `source` (default: the configured state) to `to` (an
    s3:// URL or a folder), verified; the source is only read. `region`, `endpoint_url` and
    `profile` reach a bucket named here (default: the config's state settings). Returns
    what was copied and the config line that switches to it. Raises ConfigError (the
    destination is the source), NotFoundError (nothing to copy), StateError (a conflicting
    destination, a held lock at the source, a document that does not read)."""
    config = workspace.config
    location = dataclasses.replace(
        config.state,
        region=region or config.state.region,
        endpoint_url=endpoint_url or config.state.endpoint_url,
        profile=profile or config.state.profile,
    )
    origin = workspace.store if source is None else open_store_at(source, location, config.root)
    destination = open_store_at(to, location, config.root)
    return migrate(origin, destination, switch_line(to, location, config.root))


def doctor(
    start: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DoctorReport:
    """Check the config loads, the state store is reachable, honours conditional writes and
    deletes, every document in it reads, and which locks are held; then that every
    environment's warehouse serves its live release whole. Changes nothing. Returns the
    report: every problem is a failed check in it, nothing is raised for one."""

    def load() -> ProjectConfig:
        root = find_root((start or Path.cwd()).resolve())
        return load_config(root, environ=environ, overrides=overrides)

    report = diagnose(load)
    if not report.passed:  # the warehouses are read through the config and the store
        return report
    try:
        checks = drift_checks(Workspace.open(start, overrides=overrides, environ=environ))
    except ReleasekitError as exc:
        checks = [Check("warehouse", False, exc.message, exc.hint or "")]
    return dataclasses.replace(report, checks=(*report.checks, *checks))


# --- CI: workflow files, the pull-request comment ------------------------------------------


def ci_init(
    platform: str,
    start: Path | None = None,
    *,
    force: bool = False,
    python_version: str = DEFAULT_PYTHON,
    refresh_schedule: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> CiInitResult:
    """Write releasekit's CI files for `platform` (github or gitlab) into the repository,
    filled in from its configuration. `refresh_schedule` sets when each environment
    refreshes: `CRON` for all, `ENV=CRON` for one (default: daily from 05:07 UTC, 20
    minutes apart in promotion order). Returns the files written. Refuses, writing
    nothing, when any of them exists, unless `force`. Raises ConfigError (a file exists,
    releasekit.yml is not at the repository's top, an unknown platform, a schedule that
    is not five cron fields or names an environment CI does not deploy), GitError."""
    environ = os.environ if environ is None else environ
    repo = GitRepo((start or Path.cwd()).resolve())
    config = load_config(find_root((start or Path.cwd()).resolve()), environ=environ)
    if config.root != repo.root:
        raise ConfigError(
            f"releasekit.yml is in {config.root}, not at the top of the repository ({repo.root}), "
            "where CI jobs start",
            hint="move releasekit.yml to the repository's top (its dbt.project_dir can point anywhere)",
        )
    context = ci_context(
        config,
        version=__version__,
        python_version=python_version,
        environ=environ,
        refresh_schedule=refresh_schedule,
    )
    return init_ci(repo.root, platform, context, force=force)


def ci_comment(path: Path, *, environ: Mapping[str, str] | None = None) -> CommentResult:
    """Post the Markdown in `path` as the pull (or merge) request's releasekit comment,
    replacing the one an earlier run posted. The CI job's variables say where. Returns
    where it went and whether it was created or updated. Raises ConfigError (variables
    missing), CommentError (the forge refused or could not be reached)."""
    return post_comment(read_body(path), os.environ if environ is None else environ)
