"""releasekit's Python API: what the CLI and the tests call.

It never prints and never exits: results come back as typed values, and what could not
run raises a `releasekit.errors.ReleasekitError`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from releasekit import __version__
from releasekit.checks.codec import to_dict
from releasekit.checks.report import CHECK_ORDER, CheckName, CheckReport, CheckResult
from releasekit.checks.run import CheckRequest, lint_files, run_checks
from releasekit.ci import DEFAULT_PYTHON
from releasekit.ci.comment import CommentResult, post_comment, read_body
from releasekit.ci.context import ci_context
from releasekit.ci.init import CiInitResult, init_ci
from releasekit.config.loader import find_root, load_config
from releasekit.config.model import EnvironmentConfig, ProjectConfig
from releasekit.config.scaffold import InitResult, init_project
from releasekit.dbtcore.profile import profile_targets
from releasekit.dbtcore.session import NodeCallback
from releasekit.engine.deploy import DeployResult, plan_deploy
from releasekit.engine.deploy import deploy as engine_deploy
from releasekit.engine.gc import GcResult, collect_garbage
from releasekit.engine.plan import Plan
from releasekit.engine.rollback import RollbackResult
from releasekit.engine.rollback import rollback as engine_rollback
from releasekit.engine.runtime import live_entry
from releasekit.environments.branches import DownResult, UpResult, bring_up, expired, tear_down
from releasekit.errors import ConfigError, NotFoundError, ProjectError, ReleasekitError, StateError
from releasekit.gitops.repo import GitRepo
from releasekit.promotion.drift import (
    drift_checks,
    every_environment,
    git_drift,
    missing_branch,
    warehouse_drift,
)
from releasekit.promotion.guard import fix as promotion_fix
from releasekit.promotion.guard import guard, unpromoted
from releasekit.promotion.promote import PromoteRequest, PromoteResult
from releasekit.promotion.promote import promote as run_promotion
from releasekit.promotion.sync import SyncResult
from releasekit.promotion.sync import sync as run_sync
from releasekit.state import ledger
from releasekit.state.base import BranchEnvironment, CheckRecord, LedgerEntry, LockInfo
from releasekit.state.doctor import Check, DoctorReport, diagnose
from releasekit.state.ledger import Hold, active_hold
from releasekit.state.migrate import MigrationResult, migrate, switch_line
from releasekit.state.open import open_store_at
from releasekit.state.summary import StateSummary, summarize
from releasekit.warehouse.base import ReleaseMarker
from releasekit.warehouse.naming import branch_schema
from releasekit.workspace import Workspace

__all__ = [
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
    "MigrationResult",
    "NodeCallback",
    "Plan",
    "PromoteResult",
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
    "releases",
    "rollback",
    "state_migrate",
    "state_show",
    "status",
    "sync",
    "unlock",
]


def init(start: Path | None = None, *, force: bool = False) -> InitResult:
    repo = GitRepo((start or Path.cwd()).resolve())
    project_dir = _find_dbt_project(repo.root)
    targets = profile_targets(project_dir, None)
    return init_project(
        repo.root,
        dbt_project_dir=project_dir,
        target_names=targets.names,
        default_target=targets.default,
        default_branch=repo.default_branch(),
        force=force,
    )


def _find_dbt_project(root: Path) -> Path:
    if (root / "dbt_project.yml").exists():
        return root
    found = sorted(p.parent for p in root.glob("*/dbt_project.yml"))
    if len(found) == 1:
        return found[0]
    raise ProjectError(
        f"no single dbt project found in {root} (looked for dbt_project.yml at the top and one level down)",
        hint="run `releasekit init` at the root of a git repository that holds one dbt project",
    )


def plan(workspace: Workspace, env: str | None = None) -> Plan:
    """What a deploy of the checkout into `env` would do. Where `deploy` would refuse it (a
    promoted environment and a commit that is not its branch head), the plan says so in
    its warnings and still shows what the deploy would build."""
    environment = workspace.environment(env)
    run = workspace.run_context(environment, builds=True)
    planned = plan_deploy(run)
    problem = _unpromoted(workspace, environment, run.git_sha)
    if problem is None:
        return planned
    refusal = f"`releasekit deploy {environment.name}` would refuse this commit: {problem}"
    return dataclasses.replace(planned, warnings=(f"{refusal}\n  hint: {promotion_fix(environment)}",))


def deploy(
    workspace: Workspace,
    env: str | None = None,
    *,
    allow_dirty: bool = False,
    force: bool = False,
    reason: str | None = None,
    on_node: NodeCallback | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> DeployResult:
    """Deploy the checkout into `env`. An environment with `promotes_from` takes only its
    branch head (what was promoted into it); another commit is refused with exit 2 unless
    `force` with a `reason`, which the release records. A deploy ends a rollback's hold.
    `on_wait` hears once when the deploy waits for another environment's run to finish
    building a relation it needs too."""
    _check_force(force, reason)
    environment = workspace.environment(env)
    run = workspace.run_context(environment, builds=True, on_node=on_node, allow_dirty=allow_dirty)
    forced = {}
    if _promoted(workspace, environment):
        forced = guard(workspace.repo, environment, run.git_sha, reason=reason)
    return engine_deploy(dataclasses.replace(run, on_wait=on_wait), forced=forced)


def _promoted(workspace: Workspace, env: EnvironmentConfig) -> bool:
    return workspace.is_declared(env) and env.promotes_from is not None


def _unpromoted(workspace: Workspace, env: EnvironmentConfig, commit: str) -> str | None:
    return unpromoted(workspace.repo, env, commit) if _promoted(workspace, env) else None


def _check_force(force: bool, reason: str | None) -> None:
    if force != bool(reason):
        raise ConfigError(
            "--force needs --reason, and --reason goes with --force",
            hint='for example: --force --reason "hotfix applied by hand in prod, see INC-42"',
        )


def rollback(workspace: Workspace, env: str | None = None, *, to: int | None = None) -> RollbackResult:
    """Switch `env` back to a retained release, and hold it: `sync` leaves it alone until
    its branch brings content other than what was rolled back from."""
    run = workspace.run_context(workspace.environment(env))
    return engine_rollback(run, to, content_of=workspace.content_of)


def releases(workspace: Workspace, env: str | None = None) -> list[LedgerEntry]:
    return workspace.store.entries(workspace.environment(env).name)


def unlock(workspace: Workspace, env: str, lock_id: str) -> LockInfo:
    """Clear `env`'s lock left by a run that died, if `lock_id` is its id; returns what was
    cleared. `env` is not checked against the configuration: a branch environment whose
    record is gone can still have left a lock."""
    return workspace.store.break_lock(env, lock_id)


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


def status(workspace: Workspace) -> list[EnvironmentStatus]:
    """Every declared and branch environment: its live release, and whether its warehouse
    serves it whole (marker, views, and the physical relations they read)."""
    workspace.refuse_shadowed()
    result = []
    repo = workspace.repo
    for env in every_environment(workspace):
        run = workspace.run_context(env)
        entries = workspace.store.entries(env.name)
        live = live_entry(entries)
        with run.warehouse() as warehouse:
            marker = warehouse.read_marker(env.schema)
            found = tuple(warehouse_drift(warehouse, env, live))
        head = repo.resolve(f"refs/heads/{env.branch}") if env.branch else None
        count = len(ledger.successful_release_ids(entries))
        moved = git_drift(repo, env, live, content_of=workspace.content_of)
        drift = (*missing_branch(repo, env, live), *moved)
        result.append(
            EnvironmentStatus(
                env.name,
                env.schema,
                live,
                marker,
                count,
                env.branch,
                head,
                drift,
                found,
                hold=active_hold(entries),
                forced=_forced_live(entries, live),
                branch_environment=not workspace.is_declared(env),
            )
        )
    return result


def _forced_live(entries: list[LedgerEntry], live: LedgerEntry | None) -> Mapping[str, Any]:
    """The `deploy --force` record of the release live now (a rollback to it included)."""
    if live is None:
        return {}
    made = [e for e in entries if e.kind == "deploy" and e.release_id == live.release_id and e.forced]
    return {**made[-1].forced, "who": made[-1].who} if made else {}


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
    then DST's branch moves to that commit, DST deploys it and switches, tag and push."""
    dst_env = workspace.config.environment(dst)
    source = src or dst_env.promotes_from
    workspace.refuse_shadowed([dst, *([source] if source else [])])
    if source is None:
        raise ConfigError(
            f"{dst!r} has no promotes_from, so there is nothing to promote from",
            hint=f"name the source: releasekit promote {dst} --from ENV",
        )
    _check_force(force, reason)
    request = PromoteRequest(
        dst_env,
        workspace.config.environment(source),
        tuple(approvals),
        dry_run,
        push,
        reason if force else None,
    )
    return run_promotion(workspace, request, on_node=on_node)


def sync(
    workspace: Workspace, env: str, *, force: bool = False, on_node: NodeCallback | None = None
) -> SyncResult:
    """Deploy `env`'s branch head when it differs from what `env` serves (someone merged by
    hand, a CI job pushed). A second sync of the same commit does nothing. After a rollback,
    the environment is held: sync leaves it alone until its branch brings content other
    than what was rolled back from; `force` deploys the head anyway and ends the hold."""
    chosen = workspace.config.environment(env)
    workspace.refuse_shadowed([chosen.name])
    return run_sync(workspace, chosen, force=force, on_node=on_node)


def gc(workspace: Workspace, *, dry_run: bool = False) -> list[GcResult]:
    """Physical relations no retained release of a declared or branch environment uses."""
    workspace.refuse_shadowed()
    declared = list(workspace.config.environments.values())
    branches = [workspace.branch_environment(record) for record in workspace.store.branches()]
    return collect_garbage([workspace.run_context(env) for env in declared + branches], dry_run=dry_run)


# --- branch environments ------------------------------------------------------------------


@dataclass(frozen=True)
class BranchStatus:
    record: BranchEnvironment
    branch_exists: bool
    expired: bool
    live_release: int | None
    unreadable: str = ""  # its ledger does not read: the problem, naming the document


BRANCH_WAIT_SECONDS = 120.0  # branch environments queue for a busy DuckDB file


def env_up(
    workspace: Workspace,
    branch: str | None = None,
    *,
    pin: bool = False,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> UpResult:
    """Bring up `branch`'s environment (default: the current branch's): views onto the base
    environment's live release, in a schema named from the branch. Nothing is built."""
    branch = workspace.current_branch() if branch is None else branch
    _refuse_declared(workspace, branch)
    template = workspace.config.branches
    base = workspace.config.environment(template.base)
    base_live = live_entry(workspace.store.entries(base.name))
    if base_live is None:
        raise NotFoundError(
            f"the base environment {base.name!r} has no live release to branch from",
            hint=f"deploy it first: releasekit deploy {base.name}",
        )
    catalog = workspace.run_context(base).connection.database  # DuckDB resolves it like a schema
    record = _new_record(workspace, branch, base.name, base_live.release_id, pin, catalog)
    run = workspace.run_context(workspace.branch_environment(record))
    return bring_up(dataclasses.replace(run, busy_wait=wait, on_wait=on_wait), record, base_live)


def env_down(
    workspace: Workspace,
    branch: str | None = None,
    *,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> DownResult:
    """Drop `branch`'s environment: its schema and its registry record. Physical relations
    only it used are left to `releasekit gc`."""
    branch = workspace.current_branch() if branch is None else branch
    record = workspace.store.branch(branch)
    if record is None:
        _refuse_declared(workspace, branch)
        raise NotFoundError(
            f"{branch!r} has no branch environment releasekit made",
            hint="`releasekit env list` shows the branch environments",
        )
    run = workspace.run_context(workspace.branch_environment(record))
    return tear_down(dataclasses.replace(run, busy_wait=wait, on_wait=on_wait), record)


def env_list(workspace: Workspace, *, now: datetime | None = None) -> list[BranchStatus]:
    moment = now or datetime.now(UTC)
    return [_branch_status(workspace, record, moment) for record in workspace.store.branches()]


def _branch_status(workspace: Workspace, record: BranchEnvironment, moment: datetime) -> BranchStatus:
    """One branch environment; a ledger that does not read is named, not raised: it must
    not hide the others from `env list` and `env gc`."""
    try:
        live, problem = ledger.live_release_id(workspace.store.entries(record.branch)), ""
    except StateError as exc:
        live, problem = None, exc.message
    exists = workspace.repo.branch_exists(record.branch)
    return BranchStatus(record, exists, expired(record, moment), live, problem)


def env_gc(workspace: Workspace, *, dry_run: bool = False, now: datetime | None = None) -> list[BranchStatus]:
    """Drop branch environments whose branch is gone (locally and from every remote-tracking
    ref) or whose expiry passed (unless pinned). Returns what it dropped (or would drop).
    One whose ledger does not read is left for its owner to repair (`env list` names it)."""
    doomed = [
        s for s in env_list(workspace, now=now) if (not s.branch_exists or s.expired) and not s.unreadable
    ]
    if not dry_run:
        for status in doomed:
            env_down(workspace, status.record.branch)
    return doomed


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
    (the dbt project's git tree), for promotion gates."""
    branch = workspace.current_branch() if env is None else env
    _refuse_declared(workspace, branch)
    record = workspace.store.branch(branch)
    if record is None:
        record = env_up(workspace, branch, on_wait=on_wait).record
    base_env = workspace.config.environment(base or record.base)
    request = CheckRequest(workspace.branch_environment(record), base_env, frozenset(only), lint_all)
    run = run_checks(workspace, request, on_node=on_node, on_step=on_step)
    report = run.report
    workspace.store.record_check(
        CheckRecord(
            git_sha=report.git_sha,
            env=report.env,
            base=report.base,
            release_id=report.release_id,
            passed=report.passed,
            verdict=report.verdict,
            statuses={c.name: c.status for c in report.checks},
            who=workspace.repo.user(),
            at=report.started_at,
            report=to_dict(report),
            ran=run.ran,
            skipped={name: str(reason) for name, reason in run.skipped.items()},
            content=run.content,
        )
    )
    return report


def lint(workspace: Workspace, files: Sequence[Path], *, env: str | None = None) -> CheckResult:
    """sqlfluff over `files` as `releasekit check` lints (the project's config, the dbt
    templating, `env`'s vars; default: the branch environments' base)."""
    chosen = workspace.config.environment(env or workspace.config.branches.base)
    return lint_files(workspace, chosen, files)


def _refuse_declared(workspace: Workspace, branch: str) -> None:
    for env in workspace.config.environments.values():
        if branch in (env.name, env.branch):
            raise ConfigError(
                f"{branch!r} belongs to the declared environment {env.name!r}, not to a branch environment",
                hint=f"deploy it with `releasekit deploy {env.name}`; declared environments are never "
                "brought up or dropped with `releasekit env`",
            )


def _new_record(
    workspace: Workspace, branch: str, base: str, base_release: int, pin: bool, catalog: str
) -> BranchEnvironment:
    config = workspace.config
    reserved = [env.schema for env in config.environments.values()] + [config.physical_schema, catalog]
    schema = branch_schema(branch, prefix=config.branches.schema_prefix, reserved=reserved)
    clash = next((r for r in workspace.store.branches() if r.schema == schema and r.branch != branch), None)
    if clash is not None:
        raise ConfigError(f"branches {branch!r} and {clash.branch!r} map to one schema {schema!r}")
    now = datetime.now(UTC)
    return BranchEnvironment(
        branch=branch,
        schema=schema,
        base=base,
        base_release=base_release,
        owner=workspace.repo.user(),
        created_at=now.isoformat(timespec="seconds"),
        expires_at=(now + timedelta(days=config.branches.expiry_days)).isoformat(timespec="seconds"),
        pinned=pin,
    )


# --- the state store: show, migrate, doctor -------------------------------------------------


def state_show(workspace: Workspace) -> StateSummary:
    """Where the state lives, and what it holds: ledgers, branch environments, check
    records, artifacts, locks."""
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
    `profile` reach a bucket named here (default: the config's state settings)."""
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
    environment's warehouse serves its live release whole. Changes nothing."""

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


# --- CI: workflow files, the pull-request comment, teardown of what may not exist --------------


def ci_init(
    platform: str,
    start: Path | None = None,
    *,
    force: bool = False,
    python_version: str = DEFAULT_PYTHON,
    environ: Mapping[str, str] | None = None,
) -> CiInitResult:
    """Write releasekit's CI files for `platform` (github or gitlab) into the repository,
    filled in from its configuration. Refuses, writing nothing, when any of them exists,
    unless `force`."""
    environ = os.environ if environ is None else environ
    repo = GitRepo((start or Path.cwd()).resolve())
    config = load_config(find_root((start or Path.cwd()).resolve()), environ=environ)
    if config.root != repo.root:
        raise ConfigError(
            f"releasekit.yml is in {config.root}, not at the top of the repository ({repo.root}), "
            "where CI jobs start",
            hint="move releasekit.yml to the repository's top (its dbt.project_dir can point anywhere)",
        )
    context = ci_context(config, version=__version__, python_version=python_version, environ=environ)
    return init_ci(repo.root, platform, context, force=force)


def ci_comment(path: Path, *, environ: Mapping[str, str] | None = None) -> CommentResult:
    """Post the Markdown in `path` as the pull (or merge) request's releasekit comment,
    replacing the one an earlier run posted. The CI job's variables say where."""
    return post_comment(read_body(path), os.environ if environ is None else environ)


def env_down_if_up(
    workspace: Workspace,
    branch: str | None = None,
    *,
    wait: float = BRANCH_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> DownResult | None:
    """`env_down`, except that a branch with no environment is no error but None: a pull
    request closed before its check brought one up. A declared environment's branch is
    still refused."""
    branch = workspace.current_branch() if branch is None else branch
    if workspace.store.branch(branch) is None:
        _refuse_declared(workspace, branch)
        return None
    return env_down(workspace, branch, wait=wait, on_wait=on_wait)
