"""deploy ENV: fingerprint -> build what no physical relation has yet -> test it ->
switch the environment in one atomic step -> record.

The ledger hears of a switch before the warehouse makes it (`switching`) and after
(`succeeded`); a run killed between the two is settled by the next run (runtime.reconcile).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from releasekit.alerts.webhook import Delivery
from releasekit.dbtcore.session import DbtProject, NodeResult, ParsedProject, Placement
from releasekit.engine.alerting import send_alert
from releasekit.engine.data import (
    DataMode,
    SourceUnreadable,
    expected_data,
    read_data_versions,
    upstream_sources,
)
from releasekit.engine.drift import Drift, repair_note, warehouse_drift
from releasekit.engine.fingerprint import fingerprint_graph
from releasekit.engine.graphs import keep_graph
from releasekit.engine.plan import Plan, PlanInputs, make_plan
from releasekit.engine.quality import Assessment, Finding, Written, accepted_models, assess
from releasekit.engine.runtime import (
    RunContext,
    Survey,
    live_claims,
    reconcile,
    survey,
    switch,
    wait_for_claims,
)
from releasekit.errors import StateError
from releasekit.graph import ProjectGraph
from releasekit.state import ledger
from releasekit.state.base import Claim, LedgerEntry, MetricOutcome, ModelVersion, UnreadableLedger
from releasekit.warehouse.base import Warehouse

Outcome = Literal["succeeded", "failed", "noop"]


@dataclass(frozen=True)
class Failure:
    unique_id: str
    resource_type: str
    status: str
    message: str


@dataclass(frozen=True)
class DeployResult:
    plan: Plan
    outcome: Outcome
    release_id: int | None
    failures: tuple[Failure, ...] = ()
    recovered: LedgerEntry | None = None
    # How the warehouse had drifted from the live release, now repaired (engine.drift).
    repaired: tuple[str, ...] = ()
    # What dbt ran (models, seeds, snapshots, data and unit tests), passed or not, and the
    # project graph the deploy parsed: `releasekit check` reports both.
    results: tuple[NodeResult, ...] = ()
    graph: ProjectGraph | None = None
    quality: Assessment = field(default_factory=Assessment)  # statistical process control
    alert: Delivery | None = None  # the alert sent about its findings, if any was

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"

    @property
    def repaired_in_place(self) -> bool:
        """The live release was switched in again over a drifted schema; no new release."""
        live = self.plan.live
        return bool(self.repaired) and live is not None and self.release_id == live.release_id


def plan_deploy(run: RunContext, *, graph: ProjectGraph | None = None) -> Plan:
    """What a deploy would do now. Changes nothing (no lock, no ledger entry, no DDL).
    `graph`: an earlier parse of this commit with these parameters (see `deploy`)."""
    graph = graph if graph is not None else _dbt(run).parse().graph
    with run.warehouse() as warehouse:
        in_use = {relation for claim in live_claims(run) for relation in (*claim.builds, *claim.uses)}
        plan = _plan(run, graph, warehouse, in_use)
        return dataclasses.replace(plan, repairs=warehouse_drift(warehouse, run.env, plan.live).problems)


def deploy(
    run: RunContext,
    *,
    locked: bool = False,
    graph: ProjectGraph | None = None,
    promotion: Mapping[str, Any] | None = None,
    resync: bool = False,
    cause: str = "deploy",
    forced: Mapping[str, Any] | None = None,
    accept: Mapping[str, str] | None = None,
) -> DeployResult:
    """Deploy `run`'s project to its environment.

    locked: the caller already holds the environment's lock (a promotion holds it from
      merge to switch). graph: the project as an earlier parse of this very commit with
      these parameters saw it (a stored artifact); when its plan builds and tests nothing,
      dbt is never started, else the project is parsed as usual.
    promotion: what a promotion records with the release (source, gates, approvals).
    resync: switch even when nothing changed, so a schema that drifted from its release
      (a view dropped by hand) serves it whole again, as a new release.
    cause: what runs this deploy (deploy, promote, sync, sync --force), recorded when it
      ends a rollback's hold. A held environment always switches, so the end is recorded.
    forced: what `deploy --force --reason` let past a gate, recorded with the release.
    accept: model -> the reason its data is published whatever statistical process
      control finds in it (its history starts again there).

    A schema that drifted from its live release is repaired: with nothing else to do, the
    live release is switched in again (a `repair` entry under its id); else the new
    release's switch puts everything back. A physical relation dropped by hand is rebuilt,
    as the plan builds every version that has no relation.
    """
    extra = {"promotion": dict(promotion or {}), "forced": dict(forced or {}), "cause": cause}
    with contextlib.nullcontext() if locked else run.store.lock(run.name, owner=run.who):
        result = _deploy(run, graph, extra, resync, accept or {})
    project = result.graph.project_name if result.graph else ""
    delivery = send_alert(run, "deploy", result.release_id, result.quality, result.ok, project)
    return dataclasses.replace(result, alert=delivery)


def _deploy(
    run: RunContext,
    graph: ProjectGraph | None,
    extra: dict[str, Any],
    resync: bool,
    accept: Mapping[str, str],
) -> DeployResult:
    parsed: ParsedProject | None = None
    recovered: LedgerEntry | None = None
    with contextlib.ExitStack() as kept_open:
        while True:
            # The warehouse first: a busy DuckDB file fails at once, not after a parse.
            with run.warehouse() as warehouse:
                run.check_grants(warehouse)
                recovered = reconcile(run, warehouse) or recovered
                if graph is None:
                    parsed = parse_and_keep(run)
                    graph = parsed.graph
                plan, busy = _claim(run, graph, warehouse)
                if not busy and parsed is None and (plan.builds or plan.retests):
                    parsed = parse_and_keep(run)  # the stored graph spared no build after all
                    graph = parsed.graph
                    plan, busy = _claim(run, graph, warehouse)
                if not busy:
                    held = ledger.hold_of(plan.live) is not None
                    drift = warehouse_drift(warehouse, run.env, plan.live)
                    repair_only = plan.is_noop and not resync and not held
                    if repair_only and not drift:
                        return DeployResult(plan, "noop", None, recovered=recovered, graph=graph)
                    accepted = accepted_models(graph, [w.unique_id for w in _measured(plan)], accept)
                    warehouse.drop_relations(plan.physical_schema, plan.stale)
                    plan = stamp_data(plan, graph, warehouse, run)
                    if warehouse.capabilities.single_process:
                        kept_open.enter_context(run.warehouse())  # dbt, in this process, shares it
                    break
            wait_for_claims(run, busy)  # the warehouse closed: a DuckDB file is free meanwhile
        if repair_only:
            return dataclasses.replace(_repair(run, plan, drift, recovered), graph=graph)
        results = _build(run, parsed, plan) if parsed is not None else ()
        failures = failures_of(results)
        quality = Assessment() if failures else _assess(run, graph, plan, accepted)
        failures = failures or tuple(spc_failure(f) for f in quality.blocking)
        extra["spc"] = quality.ledger_fields()
        if failures:
            result = _fail(run, plan, failures, recovered, extra)
        else:
            result = _switch(run, plan, recovered, extra, drift)
        if quality.measurements:
            outcome: MetricOutcome = "published" if result.ok else "held"
            record = quality.record(
                run.name, "deploy", outcome, result.release_id, run.git_sha, run.who, run.now()
            )
            run.store.record_metrics(record)
    return dataclasses.replace(result, results=results, graph=graph, quality=quality)


def _measured(plan: Plan) -> list[Written]:
    """The versions a deploy brings into its environment: what it builds, and what it
    reuses from elsewhere (a promotion's versions); quality.assess leaves views out."""
    live = plan.live.models if plan.live else {}
    return [
        Written(s.unique_id, s.relation, s.written_at)
        for s in plan.steps
        if s.unique_id not in live or live[s.unique_id].relation != s.relation
    ]


def _assess(run: RunContext, graph: ProjectGraph, plan: Plan, accepted: Mapping[str, str]) -> Assessment:
    with run.warehouse() as warehouse:
        history = (run.store, run.name)
        return assess(warehouse, graph, plan.physical_schema, _measured(plan), run.env.spc, history, accepted)


def spc_failure(finding: Finding) -> Failure:
    """A finding that holds a run back, as the failure its ledger entry records."""
    return Failure(finding.unique_id, "spc", "anomaly", finding.describe())


def stamp_data(plan: Plan, graph: ProjectGraph, warehouse: Warehouse, run: RunContext) -> Plan:
    """Record on each version a deploy builds the data versions of the sources it reads,
    as they are before it is built (a load meanwhile leaves it older than recorded, so the
    next refresh writes it again). Only the sources of what is built are read."""
    if not plan.builds:
        return plan
    wanted = upstream_sources(graph)
    sources = {s for step in plan.builds for s in wanted.get(step.unique_id, ())}
    try:
        now = read_data_versions(warehouse, graph, sources, cast(DataMode, run.data_mode))
    except SourceUnreadable:
        now = {}  # dbt names a missing source better, when the build reads it
    chosen: dict[str, ModelVersion] = {}
    steps = []
    for step in plan.steps:
        if step.action == "build":
            data = expected_data(graph.nodes[step.unique_id], graph, chosen, now)
            step = dataclasses.replace(step, data=data, written_at=run.now())
        steps.append(step)
        chosen[step.unique_id] = step.version({})
    models = {
        uid: dataclasses.replace(version, data=chosen[uid].data, written_at=chosen[uid].written_at)
        for uid, version in plan.models.items()
    }
    return dataclasses.replace(plan, steps=tuple(steps), models=models)


def parse_and_keep(run: RunContext) -> ParsedProject:
    """Parse `run`'s project and keep its graph in the state store for later runs."""
    parsed = _dbt(run).parse()
    keep_graph(run.store, run.git_sha, run.env.target, run.env.vars, parsed.graph)
    return parsed


def _claim(run: RunContext, graph: ProjectGraph, warehouse: Warehouse) -> tuple[Plan, tuple[Claim, ...]]:
    """Plan under the store's planning lock, leaving alone what live runs of other
    environments claim, and claim what this plan builds and reuses. When a relation it
    must build is one such a run claims, nothing is claimed: those runs come back, to be
    waited for (their relation is verified once they succeed, gone if they fail)."""
    with run.store.planning_lock(owner=run.who):
        others = live_claims(run)
        in_use = {relation for claim in others for relation in (*claim.builds, *claim.uses)}
        ledger_view = survey(run.store, run.name, run.physical_schema)
        plan = _plan(run, graph, warehouse, in_use, ledger_view)
        _refuse_unprovable_stale(plan, ledger_view.unreadable)
        builds = {step.relation for step in plan.builds}
        busy = tuple(claim for claim in others if builds & {*claim.builds, *claim.uses})
        # Waiting, it claims nothing: an earlier claim of this run must not hold others up.
        claimed = ([], []) if busy else (sorted(builds), [step.relation for step in plan.reuses])
        run.store.claim(run.name, plan.physical_schema, *claimed)
        return plan, busy


def _refuse_unprovable_stale(plan: Plan, unreadable: Sequence[UnreadableLedger]) -> None:
    """A relation that exists but that no readable ledger verified is rebuilt (dropped
    first). While another environment's ledger does not read, that relation may be what it
    serves: never drop it; refuse, naming the ledger, before anything is built."""
    if not unreadable or not plan.stale:
        return
    raise StateError(
        f"{plan.env!r} must rebuild {len(plan.stale)} relation(s) that exist but that no readable ledger "
        f"verified ({', '.join(plan.stale[:3])}), and they may be what another environment serves: "
        + "; ".join(ledger.problem for ledger in unreadable),
        hint="restore that ledger entry from a backup, or move its environment's ledger folder aside "
        "once that environment is torn down; nothing was built or dropped",
    )


def _dbt(run: RunContext) -> DbtProject:
    if run.dbt is None:
        raise ValueError("a deploy or refresh needs a dbt project")
    return run.dbt


def _plan(
    run: RunContext,
    graph: ProjectGraph,
    warehouse: Warehouse,
    in_use: Set[str] = frozenset(),
    ledger_view: Survey | None = None,
) -> Plan:
    prints = fingerprint_graph(graph, run.environ)
    ledger_view = ledger_view or survey(run.store, run.name, run.physical_schema)
    inputs = PlanInputs(
        env=run.name,
        schema=run.env.schema,
        physical_schema=run.physical_schema,
        git_sha=run.git_sha,
        params=dict(run.env.vars),
        live=ledger_view.live,
        existing=warehouse.relations(run.physical_schema),
        versions=ledger_view.versions,
        elsewhere=ledger_view.elsewhere,
        max_name_bytes=warehouse.capabilities.max_identifier_bytes,
        in_use=in_use,
        preferred=_preferred(run, ledger_view),
    )
    return make_plan(graph, prints, inputs)


def _preferred(run: RunContext, ledger_view: Survey) -> dict[str, ModelVersion]:
    """The live release's versions, and for a promotion those of the environment it brings
    the release from: where both serve the same code, the one written on newer data (so a
    promotion moves data forward, never back); where only the source serves the code being
    promoted, the source's (build once, promote many, data included)."""
    preferred = dict(ledger_view.live.models) if ledger_view.live else {}
    source = ledger_view.others.get(run.promoted_from or "")
    for uid, version in (source.models if source else {}).items():
        own = preferred.get(uid)
        if own is None or own.fingerprint != version.fingerprint or own.written_at <= version.written_at:
            preferred[uid] = version
    return preferred


def _build(run: RunContext, parsed: ParsedProject, plan: Plan) -> tuple[NodeResult, ...]:
    """Build (and test) what is new; test again what is reused but whose tests changed."""
    placements = {s.unique_id: Placement(plan.physical_schema, s.relation) for s in plan.steps}
    results: list[NodeResult] = []
    if plan.builds:
        results += _dbt(run).build(parsed, placements, [s.unique_id for s in plan.builds])
    if plan.retests and not failures_of(results):
        results += _dbt(run).test(parsed, placements, [s.unique_id for s in plan.retests])
    return tuple(results)


def failures_of(results: Sequence[NodeResult]) -> tuple[Failure, ...]:
    return tuple(Failure(r.unique_id, r.resource_type, r.status, r.message) for r in results if not r.ok)


def _fail(
    run: RunContext,
    plan: Plan,
    failures: tuple[Failure, ...],
    recovered: LedgerEntry | None,
    extra: dict[str, Any],
) -> DeployResult:
    """Nothing switches; what this attempt built is dropped so it is never reused untested."""
    with run.warehouse() as warehouse:
        warehouse.drop_relations(plan.physical_schema, [s.relation for s in plan.builds])
    release_id = _next_id(run)
    run.record(
        "deploy",
        "failed",
        release_id,
        params=plan.params,
        models=plan.models,
        built=tuple(s.unique_id for s in plan.builds),
        reused=tuple(s.unique_id for s in plan.reuses),
        failures=tuple(f"{f.unique_id}: {f.status}: {f.message}" for f in failures),
        previous_release=plan.live.release_id if plan.live else None,
        forced=extra["forced"],
        spc=extra.get("spc", {}),
    )
    return DeployResult(plan, "failed", release_id, failures, recovered)


def _switch(
    run: RunContext, plan: Plan, recovered: LedgerEntry | None, extra: dict[str, Any], drift: Drift
) -> DeployResult:
    release_id = _next_id(run)
    fields = dict(
        params=plan.params,
        models=plan.models,
        built=tuple(s.unique_id for s in plan.builds),
        reused=tuple(s.unique_id for s in plan.reuses),
        previous_release=plan.live.release_id if plan.live else None,
        promotion=extra["promotion"],
        forced=extra["forced"],
        hold=_lift(plan.live, extra["cause"]),
        note=repair_note(drift),
        spc=extra.get("spc", {}),
    )
    run.record("deploy", "switching", release_id, **fields)
    with run.warehouse() as warehouse:
        previous = plan.live.models if plan.live else {}
        stray = drift.extra_views
        switch(run, warehouse, plan.models, previous, release_id, run.git_sha, also_drop=stray)
    run.record("deploy", "succeeded", release_id, **fields)
    return DeployResult(plan, "succeeded", release_id, recovered=recovered, repaired=drift.problems)


def _repair(run: RunContext, plan: Plan, drift: Drift, recovered: LedgerEntry | None) -> DeployResult:
    """Switch the live release in again, whole: its views, the marker, and no view it lacks.
    Nothing is built (every relation it reads exists: the plan built nothing)."""
    live = plan.live
    if live is None:  # a plan with no live release is never a noop
        raise ValueError("only a live release can be repaired")
    fields = dict(
        git_sha=live.git_sha,
        params=live.params,
        models=live.models,
        previous_release=live.release_id,
        note=repair_note(drift),
    )
    run.record("repair", "switching", live.release_id, **fields)
    with run.warehouse() as warehouse:
        models = live.models
        switch(run, warehouse, models, models, live.release_id, live.git_sha, also_drop=drift.extra_views)
    run.record("repair", "succeeded", live.release_id, **fields)
    return DeployResult(plan, "succeeded", live.release_id, recovered=recovered, repaired=drift.problems)


def _lift(live: LedgerEntry | None, cause: str) -> dict[str, Any]:
    """The record that this release ends the hold the live rollback set, if it set one."""
    hold = ledger.hold_of(live)
    if hold is None:
        return {}
    return {
        "action": "lift",
        "by": cause,
        "held_release": hold.to_release,
        "held_by": hold.who,
        "held_at": hold.at,
        "from_release": hold.from_release,
    }


def _next_id(run: RunContext) -> int:
    return ledger.next_release_id(run.store.entries(run.name))
