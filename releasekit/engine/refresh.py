"""refresh ENV: the live release's code on the data as it is now, write -> audit -> publish.

1. **Write**: every model whose data is out of date (engine.data) gets a new version in a
   relation of its own, beside the live one: a table is rebuilt; an incremental model or
   snapshot starts from a copy of its live relation and runs its incremental logic there;
   a view is written again only when a relation it reads was. The live relations are
   never written.
2. **Audit**: dbt's data tests of what was written (dbt build runs them), then the
   project's logic tests with `ref()` on the relations the release would serve.
3. **Publish**: only when the audit passed, the same atomic switch a deploy makes.
4. **Record**: a `refresh` entry: a new release of the same commit and parameters.

A failed audit publishes nothing, drops what it wrote (so no later run can serve it
untested) and records the attempt. A version equal in code and data to one another
environment wrote and verified is reused, not written again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from releasekit.alerts.webhook import Delivery
from releasekit.dbtcore.session import NodeResult, ParsedProject, Placement
from releasekit.engine.alerting import send_alert
from releasekit.engine.data import (
    DataMode,
    SourceUnreadable,
    expected_data,
    read_data_versions,
    reads_live,
    upstream_sources,
    version_digest,
)
from releasekit.engine.deploy import Failure, failures_of, parse_and_keep, spc_failure
from releasekit.engine.fingerprint import fingerprint_graph
from releasekit.engine.plan import explain
from releasekit.engine.quality import Assessment, Written, accepted_models, assess
from releasekit.engine.runtime import RunContext, live_claims, reconcile, survey, switch
from releasekit.errors import NotFoundError, RefreshError
from releasekit.graph import Node, ProjectGraph
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry, ModelVersion
from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.inspection import rows_of
from releasekit.warehouse.naming import physical_name

# write: a new data version is written; reuse: another run wrote this very version (equal
# code, equal data) and it was verified; test: a view whose sources changed keeps its
# relation (it reads them live) and its tests run again; keep: the live version stays.
Action = Literal["write", "reuse", "test", "keep"]
Outcome = Literal["published", "held", "noop", "planned"]
# What audits the relations a refresh wrote before it publishes them: given the warehouse
# and model name -> (schema, relation) of the release it would publish, the failures.
Audit = Callable[[Warehouse, Mapping[str, tuple[str, str]]], Sequence[Failure]]


@dataclass(frozen=True)
class RefreshStep:
    unique_id: str
    name: str
    materialized: str
    action: Action
    relation: str  # what the refreshed release serves
    live_relation: str  # what the live release serves
    reasons: tuple[str, ...] = ()
    base: str = ""  # an incremental model's or snapshot's starting copy: its live relation


@dataclass(frozen=True)
class SourceVersion:
    unique_id: str
    name: str  # source_name.table
    now: str  # its data version now
    recorded: str | None  # what the live release's versions recorded (None: not recorded or mixed)

    @property
    def changed(self) -> bool:
        return self.recorded != self.now


@dataclass(frozen=True)
class RefreshPlan:
    env: str
    live: LedgerEntry
    physical_schema: str
    steps: tuple[RefreshStep, ...]  # material models, in DAG order
    sources: tuple[SourceVersion, ...]  # every source read
    models: Mapping[str, ModelVersion]  # the release a publish would serve
    stale: tuple[str, ...] = ()  # relations a killed run left where this one writes

    @property
    def writes(self) -> tuple[RefreshStep, ...]:
        return tuple(step for step in self.steps if step.action == "write")

    @property
    def retests(self) -> tuple[RefreshStep, ...]:
        return tuple(step for step in self.steps if step.action == "test")

    @property
    def changes(self) -> tuple[RefreshStep, ...]:
        return tuple(step for step in self.steps if step.action != "keep")

    @property
    def is_noop(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class RefreshResult:
    plan: RefreshPlan
    outcome: Outcome
    release_id: int | None = None
    failures: tuple[Failure, ...] = ()
    results: tuple[NodeResult, ...] = ()
    rows: Mapping[str, int] = field(default_factory=dict)  # rows of each table written
    seconds: Mapping[str, float] = field(default_factory=dict)  # read, write, audit, measure, publish
    recovered: LedgerEntry | None = None
    quality: Assessment = field(default_factory=Assessment)  # statistical process control
    alert: Delivery | None = None  # the alert sent about its findings, if any was

    @property
    def ok(self) -> bool:
        return self.outcome != "held"


def refresh(
    run: RunContext,
    *,
    select: Collection[str] = (),
    graph: ProjectGraph | None = None,
    audit: Audit | None = None,
    dry_run: bool = False,
    accept: Mapping[str, str] | None = None,
) -> RefreshResult:
    """Refresh `run`'s environment: `run` holds its live release's commit (`git_sha`) and
    parameters. `select`: model names; their descendants are refreshed with them, so no
    model reads data older than its parents'. `graph`: that commit's stored graph (dbt then
    parses only when something is written). `dry_run`: plan, change nothing. `accept`:
    model -> the reason its data is published whatever statistical process control finds
    (a new baseline starts there)."""
    parsed: ParsedProject | None = None
    if graph is None:
        parsed = parse_and_keep(run)
        graph = parsed.graph
    if dry_run:
        with run.warehouse() as warehouse:
            return RefreshResult(_plan(run, warehouse, graph, select), "planned")
    with run.store.lock(run.name, owner=run.who):
        result = _refresh(run, parsed, graph, select, audit, accept or {})
    # Sent once the lock is free: a slow webhook holds nobody up (it is bounded anyway).
    delivery = send_alert(run, "refresh", result.release_id, result.quality, result.ok, graph.project_name)
    return dataclasses.replace(result, alert=delivery)


def _refresh(
    run: RunContext,
    parsed: ParsedProject | None,
    graph: ProjectGraph,
    select: Collection[str],
    audit: Audit | None,
    accept: Mapping[str, str],
) -> RefreshResult:
    with contextlib.ExitStack() as kept_open:
        clock = _Clock()
        with run.warehouse() as warehouse:
            recovered = reconcile(run, warehouse)
            plan = _plan(run, warehouse, graph, select)
            clock.lap("read")
            accepted = accepted_models(graph, [w.unique_id for w in _measured(plan)], accept)
            if plan.is_noop:
                return RefreshResult(plan, "noop", recovered=recovered)
            _claim(run, plan)
            warehouse.drop_relations(plan.physical_schema, plan.stale)
            for step in plan.writes:
                if step.base:
                    warehouse.copy_relation(plan.physical_schema, step.base, step.relation)
            if warehouse.capabilities.single_process:
                kept_open.enter_context(run.warehouse())  # dbt, in this process, shares it
        needs_dbt = plan.writes or plan.retests
        parsed = parsed if parsed is not None or not needs_dbt else parse_and_keep(run)
        results = _write(run, parsed, plan)
        clock.lap("write")
        failures = failures_of(results)
        with run.warehouse() as warehouse:
            if not failures and audit is not None:
                failures = tuple(audit(warehouse, _relations(plan)))
            clock.lap("audit")
            quality = Assessment()
            if not failures:
                history = (run.store, run.name)
                measured = _measured(plan)
                quality = assess(
                    warehouse, graph, plan.physical_schema, measured, run.env.spc, history, accepted
                )
                failures = tuple(spc_failure(f) for f in quality.blocking)
                clock.lap("measure")
            if failures:
                return _hold(run, warehouse, plan, failures, results, clock, recovered, quality)
            rows = _rows(warehouse, plan)
            return _publish(run, warehouse, plan, results, rows, clock, recovered, quality)


def _plan(run: RunContext, warehouse: Warehouse, graph: ProjectGraph, select: Collection[str]) -> RefreshPlan:
    entries = run.store.entries(run.name)
    live = ledger.require_live(entries, run.name, "refresh")
    if live.git_sha != run.git_sha:
        raise RefreshError(
            f"{run.name!r} now serves release {live.release_id} of {live.git_sha[:12]}, not the commit "
            f"this refresh checked out ({run.git_sha[:12]}): it was deployed meanwhile",
            hint=f"run `releasekit refresh {run.name}` again",
        )
    _require_live_code(graph, live, run.environ)
    scope = _scope(graph, live, select)
    wanted = upstream_sources(graph)
    sources = {source for uid in scope for source in wanted.get(uid, ())}
    try:
        now = read_data_versions(warehouse, graph, sources, cast(DataMode, run.data_mode))
    except SourceUnreadable as exc:
        raise RefreshError(
            f"cannot read source {_source_name(exc.source)} ({exc.source.relation}): {exc.reason}",
            hint="load the source, or fix its database, schema or identifier in the project's sources; "
            "nothing changed",
        ) from None
    ledger_view = survey(run.store, run.name, run.physical_schema)
    existing = warehouse.relations(run.physical_schema)
    steps, models = _steps(graph, live, scope, now, ledger_view.versions, existing, run.now())
    in_use = {relation for claim in live_claims(run) for relation in (*claim.builds, *claim.uses)}
    stale = tuple(
        s.relation
        for s in steps
        if s.action == "write" and s.relation in existing and s.relation not in in_use
    )
    _refuse_missing_bases(steps, existing)
    versions = _source_versions(graph, live, now)
    return RefreshPlan(run.name, live, run.physical_schema, steps, versions, models, stale)


def _scope(graph: ProjectGraph, live: LedgerEntry, select: Collection[str]) -> set[str]:
    """Models a refresh may write: all, or the selected and their descendants."""
    material = {
        node.unique_id for node in graph.nodes.values() if node.is_material and node.unique_id in live.models
    }
    if not select:
        return material
    by_name = {graph.nodes[uid].name: uid for uid in material}
    unknown = [name for name in select if name not in by_name and name not in material]
    if unknown:
        raise NotFoundError(
            f"--select names no model of the live release: {', '.join(sorted(unknown))}",
            hint=f"name models the environment serves ({', '.join(sorted(by_name)[:8])}"
            + (", ..." if len(by_name) > 8 else "")
            + ")",
        )
    chosen = {by_name.get(name, name) for name in select}
    kids = graph.children()
    stack = list(chosen)
    while stack:
        for child in kids.get(stack.pop(), ()):
            if child not in chosen:
                chosen.add(child)
                stack.append(child)
    return chosen & material


def _require_live_code(graph: ProjectGraph, live: LedgerEntry, environ: Mapping[str, str]) -> None:
    """The checked-out commit, with the live parameters, must give the live release's
    fingerprints: else what a refresh writes is not the code consumers read."""
    prints = fingerprint_graph(graph, environ)
    differ = [
        (uid, version)
        for uid, version in live.models.items()
        if uid not in prints or prints[uid].digest != version.fingerprint
    ]
    if not differ:
        return
    uid, version = differ[0]
    why = "; ".join(explain(prints[uid], version, graph, True)) if uid in prints else "the model is gone"
    raise RefreshError(
        f"release {live.release_id} of {live.env!r} does not reproduce from its commit "
        f"{live.git_sha[:12]}: {len(differ)} model(s) differ, e.g. {version.name} ({why})",
        hint="an env var or package the release read has changed since it was deployed: deploy the "
        f"environment again (`releasekit deploy {live.env}`), then refresh",
    )


def _steps(
    graph: ProjectGraph,
    live: LedgerEntry,
    scope: set[str],
    now: Mapping[str, str],
    versions: Mapping[str, ModelVersion],
    existing: set[str],
    written_at: str,
) -> tuple[tuple[RefreshStep, ...], dict[str, ModelVersion]]:
    chosen: dict[str, ModelVersion] = {}
    steps: list[RefreshStep] = []
    for node in graph.in_dag_order():
        current = live.models.get(node.unique_id)
        if current is None or not node.is_material:
            continue
        expected = expected_data(node, graph, chosen, now)
        reasons = _reasons(node, current, expected, graph, chosen, live) if node.unique_id in scope else ()
        if not reasons:
            chosen[node.unique_id] = current
            steps.append(_step(node, current, "keep", current.relation))
            continue
        if reads_live(node) and not _moved(node, chosen, live):
            chosen[node.unique_id] = dataclasses.replace(current, data=expected, written_at=written_at)
            steps.append(_step(node, current, "test", current.relation, reasons))
            continue
        base = current.relation if node.is_stateful else ""
        relation = physical_name(node.name, version_digest(current.fingerprint, expected, base))
        done = versions.get(relation) if relation in existing else None
        chosen[node.unique_id] = dataclasses.replace(
            current,
            relation=relation,
            data=done.data if done else expected,
            written_at=done.written_at if done else written_at,
        )
        action: Action = "reuse" if done else "write"
        steps.append(_step(node, current, action, relation, reasons, base))
    return tuple(steps), chosen


def _step(
    node: Node,
    current: ModelVersion,
    action: Action,
    relation: str,
    reasons: tuple[str, ...] = (),
    base: str = "",
) -> RefreshStep:
    return RefreshStep(
        node.unique_id, node.name, node.materialized, action, relation, current.relation, reasons, base
    )


def _reasons(
    node: Node,
    current: ModelVersion,
    expected: Mapping[str, str],
    graph: ProjectGraph,
    chosen: Mapping[str, ModelVersion],
    live: LedgerEntry,
) -> tuple[str, ...]:
    """Why `node`'s live version is out of date; () when it is not."""
    if node.resource_type == "seed":
        return ()  # a seed's data is its file: it changes with code
    moved = [graph.nodes[p].name for p in _moved(node, chosen, live)]
    if reads_live(node) and moved:
        return (f"reads {', '.join(moved)}, refreshed",)
    recorded = dict(current.data)
    if recorded == dict(expected):
        return ()
    if reads_live(node):
        return ("its sources changed: a view reads them live; its tests run again",)
    if not recorded:
        return ("data version not recorded (written before releasekit recorded them)",)
    changed = sorted(s for s in set(recorded) | set(expected) if recorded.get(s) != expected.get(s))
    return tuple(
        _source_reason(graph.nodes[s], recorded.get(s), expected.get(s)) for s in changed if s in graph.nodes
    )


def _moved(node: Node, chosen: Mapping[str, ModelVersion], live: LedgerEntry) -> list[str]:
    """Parents this refresh gives a new relation: a view on them must be written again."""
    return [
        p
        for p in node.parents
        if p in chosen and p in live.models and chosen[p].relation != live.models[p].relation
    ]


def _source_reason(source: Node, before: str | None, after: str | None) -> str:
    name = _source_name(source)
    old, new = rows_of(before or ""), rows_of(after or "")
    if before is None:
        return f"reads source {name} (new)"
    if after is None:
        return f"no longer reads source {name}"
    if old is not None and new is not None and old != new:
        return f"source {name} changed (rows {old:,} -> {new:,})"
    return f"source {name} changed"


def _source_name(source: Node) -> str:
    return ".".join(source.fqn[-2:]) if len(source.fqn) >= 2 else source.name


def _source_versions(
    graph: ProjectGraph, live: LedgerEntry, now: Mapping[str, str]
) -> tuple[SourceVersion, ...]:
    recorded: dict[str, set[str]] = {}
    for version in live.models.values():
        for source, data in version.data.items():
            recorded.setdefault(source, set()).add(data)
    return tuple(
        SourceVersion(
            uid,
            _source_name(graph.nodes[uid]),
            now[uid],
            next(iter(recorded[uid])) if len(recorded.get(uid, ())) == 1 else None,
        )
        for uid in sorted(now)
    )


def _refuse_missing_bases(steps: Sequence[RefreshStep], existing: set[str]) -> None:
    missing = [step for step in steps if step.action == "write" and step.base and step.base not in existing]
    if missing:
        step = missing[0]
        raise RefreshError(
            f"the live relation of {step.materialized} model {step.name} ({step.base}) is gone: "
            "a refresh starts from it, so its history cannot be carried on",
            hint="rebuild it in full with `releasekit deploy` (its history starts anew), or restore the "
            "relation; nothing changed",
        )


def _claim(run: RunContext, plan: RefreshPlan) -> None:
    with run.store.planning_lock(owner=run.who):
        builds = sorted(step.relation for step in plan.writes)
        uses = sorted({version.relation for version in plan.models.values()} - set(builds))
        run.store.claim(run.name, plan.physical_schema, builds, uses)


def _write(run: RunContext, parsed: ParsedProject | None, plan: RefreshPlan) -> tuple[NodeResult, ...]:
    if run.dbt is None or parsed is None:
        return ()
    placements = {uid: Placement(plan.physical_schema, v.relation) for uid, v in plan.models.items()}
    results = (
        list(run.dbt.build(parsed, placements, [step.unique_id for step in plan.writes]))
        if plan.writes
        else []
    )
    if plan.retests and not failures_of(results):
        results += run.dbt.test(parsed, placements, [step.unique_id for step in plan.retests])
    return tuple(results)


def _measured(plan: RefreshPlan) -> list[Written]:
    """What statistical process control measures: the tables a refresh writes or brings in
    (a view holds no data of its own)."""
    return [
        Written(step.unique_id, step.relation, plan.models[step.unique_id].written_at)
        for step in plan.steps
        if step.action in ("write", "reuse") and step.materialized != "view"
    ]


def _relations(plan: RefreshPlan) -> dict[str, tuple[str, str]]:
    return {version.name: (plan.physical_schema, version.relation) for version in plan.models.values()}


def _rows(warehouse: Warehouse, plan: RefreshPlan) -> dict[str, int]:
    return {
        step.unique_id: warehouse.row_count(plan.physical_schema, step.relation)
        for step in plan.writes
        if step.materialized != "view"
    }


def _record_fields(
    plan: RefreshPlan,
    results: Sequence[NodeResult],
    rows: Mapping[str, int],
    clock: _Clock,
    quality: Assessment,
) -> dict[str, Any]:
    tests = [r for r in results if r.resource_type in ("test", "unit_test")]
    record = {
        "from_release": plan.live.release_id,
        "sources": {
            s.unique_id: {"name": s.name, "before": s.recorded, "after": s.now} for s in plan.sources
        },
        "rewritten": {step.unique_id: list(step.reasons) for step in plan.changes},
        "reused_versions": sorted(step.unique_id for step in plan.changes if step.action == "reuse"),
        "rows": dict(rows),
        "tests": {"passed": sum(r.ok for r in tests), "failed": sum(not r.ok for r in tests)},
        "seconds": dict(clock.laps),
    }
    return dict(
        params=plan.live.params,
        models=plan.models,
        built=tuple(step.unique_id for step in plan.writes),
        reused=tuple(uid for uid in plan.models if uid not in {s.unique_id for s in plan.writes}),
        previous_release=plan.live.release_id,
        refresh=record,
        spc=quality.ledger_fields(),
    )


def _hold(
    run: RunContext,
    warehouse: Warehouse,
    plan: RefreshPlan,
    failures: tuple[Failure, ...],
    results: tuple[NodeResult, ...],
    clock: _Clock,
    recovered: LedgerEntry | None,
    quality: Assessment,
) -> RefreshResult:
    """Nothing is published; what was written is dropped, so it is never served untested."""
    warehouse.drop_relations(plan.physical_schema, [step.relation for step in plan.writes])
    release_id = ledger.next_release_id(run.store.entries(run.name))
    fields = _record_fields(plan, results, {}, clock, quality)
    fields["failures"] = tuple(f"{f.unique_id}: {f.status}: {f.message}" for f in failures)
    run.record("refresh", "failed", release_id, **fields)
    if quality.measurements:
        run.store.record_metrics(
            quality.record(run.name, "refresh", "held", release_id, run.git_sha, run.who, run.now())
        )
    return RefreshResult(plan, "held", release_id, failures, results, {}, clock.laps, recovered, quality)


def _publish(
    run: RunContext,
    warehouse: Warehouse,
    plan: RefreshPlan,
    results: tuple[NodeResult, ...],
    rows: dict[str, int],
    clock: _Clock,
    recovered: LedgerEntry | None,
    quality: Assessment,
) -> RefreshResult:
    release_id = ledger.next_release_id(run.store.entries(run.name))
    started = time.perf_counter()
    fields = _record_fields(plan, results, rows, clock, quality)
    hold = ledger.hold_of(plan.live)  # a rollback's hold stops sync, not new data: it stays
    fields["hold"] = hold.carried() if hold else {}
    run.record("refresh", "switching", release_id, **fields)
    switch(run, warehouse, plan.models, plan.live.models, release_id, run.git_sha)
    clock.laps["publish"] = round(time.perf_counter() - started, 3)
    fields["refresh"] = {**fields["refresh"], "seconds": dict(clock.laps)}
    run.record("refresh", "succeeded", release_id, **fields)
    if quality.measurements:
        record = quality.record(run.name, "refresh", "published", release_id, run.git_sha, run.who, run.now())
        run.store.record_metrics(record)
    return RefreshResult(plan, "published", release_id, (), results, rows, clock.laps, recovered, quality)


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now
