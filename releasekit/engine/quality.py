"""Statistical process control of what a run writes, before it is published.

Each version a deploy or refresh writes is measured in the warehouse (`Warehouse.profile`,
one query) and every judged metric is compared with the environment's history of that
model (`spc.stats.judge`): the published points since the model's last accepted change,
learned per environment, model and metric. A finding at severity `error` holds the run
back as a failed test does; at `warn` the data is published and an alert goes out. A
model the user accepts (`--accept MODEL --reason ...`) is published whatever its
findings, and its history starts again at this point.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from releasekit.alerts.payload import AlertEvent
from releasekit.alerts.payload import Finding as AlertFinding
from releasekit.config.model import SpcPolicy
from releasekit.config.spc import model_spc_policy
from releasekit.errors import NotFoundError
from releasekit.graph import ProjectGraph
from releasekit.spc.model import Observation, Settings, Verdict
from releasekit.spc.stats import judge, judge_rebuild
from releasekit.state.base import Measurement, MetricLog, MetricOutcome, MetricRecord
from releasekit.warehouse.base import Warehouse


@dataclass(frozen=True)
class Written:
    """A version a run wrote (or brought into the environment) that consumers would read."""

    unique_id: str
    relation: str
    written_at: str


@dataclass(frozen=True)
class Finding:
    unique_id: str
    name: str
    metric: str  # e.g. row_count, null_fraction.email
    verdict: Verdict
    severity: str  # warn | error
    accepted: bool = False  # the user accepted the model's data as it is

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.accepted

    def describe(self) -> str:
        limits = self.verdict.limits
        bounds = f" outside {limits.lower:.6g}..{limits.upper:.6g}" if limits else ""
        return f"{self.metric} = {self.verdict.value:.6g}{bounds} ({', '.join(self.verdict.rules)})"


@dataclass(frozen=True)
class Assessment:
    """What statistical process control measured and found in one run."""

    measurements: tuple[Measurement, ...] = ()
    findings: tuple[Finding, ...] = ()
    accepted: Mapping[str, str] = field(default_factory=dict)  # unique id -> reason
    judged: int = 0  # metrics compared with a history long enough to judge

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocking)

    def record(
        self,
        env: str,
        kind: str,
        outcome: MetricOutcome,
        release_id: int | None,
        git_sha: str,
        who: str,
        at: str,
    ) -> MetricRecord:
        flagged = {f"{f.unique_id} {f.metric}": f.verdict.rules for f in self.findings}
        return MetricRecord(
            env, kind, outcome, release_id, git_sha, who, at, self.measurements, dict(self.accepted), flagged
        )

    def ledger_fields(self) -> dict[str, Any]:
        """What the run's ledger entry records of it (`LedgerEntry.spc`)."""
        if not self.measurements:
            return {}
        return {
            "measured": len(self.measurements),
            "judged": self.judged,
            "findings": [f"{f.unique_id}: {f.severity}: {f.describe()}" for f in self.findings],
            "accepted": dict(self.accepted),
        }

    def alert(
        self, env: str, kind: str, held: bool, release_id: int | None, git_sha: str, at: str, project: str
    ) -> AlertEvent:
        findings = tuple(_alert_finding(f) for f in self.findings if not f.accepted)
        outcome = "held" if held else "published"
        return AlertEvent(env, kind, outcome, release_id, git_sha, at, findings, project)


def assess(
    warehouse: Warehouse,
    graph: ProjectGraph,
    physical_schema: str,
    written: Sequence[Written],
    policy: SpcPolicy,
    history: tuple[MetricLog, str],
    accepted: Mapping[str, str] | None = None,
) -> Assessment:
    """Measure `written` and judge each metric against the history `(store, env)` keeps of
    it (read_history). `accepted`: unique id -> reason (see `accepted_models`)."""
    policies = model_policies(graph, policy)
    measurements = []
    for version in written:
        node = graph.nodes[version.unique_id]
        if policies(node.unique_id).severity == "off" or node.materialized in ("view", "ephemeral"):
            continue
        values = warehouse.profile(physical_schema, version.relation)
        measurements.append(
            Measurement(node.unique_id, node.name, version.relation, version.written_at, values)
        )
    store, env = history
    records = read_history(store, env, [m.unique_id for m in measurements], policies) if measurements else []
    return judge_measurements(measurements, policies, records, accepted or {})


def model_policies(graph: ProjectGraph, policy: SpcPolicy) -> Callable[[str], SpcPolicy]:
    """Each model's policy: `policy` with the model's own `meta.releasekit.spc` over it (a
    model `graph` does not hold gets `policy`)."""

    def of(unique_id: str) -> SpcPolicy:
        node = graph.nodes.get(unique_id)
        return (
            policy if node is None else model_spc_policy(policy, node.spc, node.properties_path or node.path)
        )

    return of


def judge_measurements(
    measurements: Sequence[Measurement],
    policies: Callable[[str], SpcPolicy],
    history: Sequence[MetricRecord],
    accepted: Mapping[str, str],
    *,
    rebuild: bool = False,
) -> Assessment:
    """Judge each measured metric against `history` under its model's policy. `rebuild`:
    the measurements are of the data history's last point, rebuilt by changed code (a
    branch's check), not of a new load (spc.stats.judge_rebuild)."""
    findings, judged = [], 0
    points = baselines(history)
    for measurement in measurements:
        mine = policies(measurement.unique_id)
        if mine.severity == "off":
            continue
        uid = measurement.unique_id
        values, at = measurement.values, measurement.written_at
        past = points.get(uid, {})
        for metric, verdict in _judge(values, at, mine, past, judge_rebuild if rebuild else judge):
            judged += verdict.limits is not None
            if verdict.anomalous:
                findings.append(
                    Finding(uid, measurement.name, metric, verdict, mine.severity, uid in accepted)
                )
    return Assessment(tuple(measurements), tuple(findings), dict(accepted), judged)


def read_history(
    store: MetricLog, env: str, unique_ids: Collection[str], policies: Callable[[str], SpcPolicy]
) -> list[MetricRecord]:
    """The newest of `env`'s metric records that judging `unique_ids` needs: enough for each
    to have its policy's `window` of published points (or to reach its last acceptance),
    read in growing batches, so a long history is not read whole at every run."""
    windows = {uid: policies(uid).window for uid in unique_ids}
    batch = 4 * max(windows.values(), default=1)
    while True:
        records = store.metrics(env, newest=batch)
        if len(records) < batch or all(_enough(records, uid, n) for uid, n in windows.items()):
            return records
        batch *= 4


def _enough(records: Sequence[MetricRecord], unique_id: str, window: int) -> bool:
    points = 0
    for record in reversed(records):
        if record.outcome != "published":
            continue
        points += any(m.unique_id == unique_id for m in record.measurements)
        if points >= window or unique_id in record.accepted:
            return True
    return False


def baselines(history: Iterable[MetricRecord]) -> dict[str, dict[str, list[Observation]]]:
    """model -> metric -> its published points since the model's last accepted change (that
    record's point included: it starts the new baseline), oldest first. One pass over the
    history, however many models and metrics are judged against it."""
    points: dict[str, dict[str, list[Observation]]] = {}
    for record in history:
        if record.outcome != "published":
            continue
        for unique_id in record.accepted:
            points[unique_id] = {}
        for measurement in record.measurements:
            mine = points.setdefault(measurement.unique_id, {})
            for metric, value in measurement.values.items():
                if value is not None:
                    mine.setdefault(metric, []).append(
                        Observation(value, measurement.written_at or record.at)
                    )
    return points


def _judge(
    values: Mapping[str, float | None],
    at: str,
    policy: SpcPolicy,
    past: Mapping[str, Sequence[Observation]],
    judging: Callable[[Sequence[Observation], Observation, Settings], Verdict],
) -> Iterable[tuple[str, Verdict]]:
    settings = settings_of(policy)
    for metric, value in sorted(values.items()):
        if value is None or not judged_metric(metric, policy):
            continue
        yield metric, judging(past.get(metric, ()), Observation(value, at), settings)


def settings_of(policy: SpcPolicy) -> Settings:
    """The statistics' settings a policy gives."""
    return Settings(policy.window, policy.min_history, policy.sigma, policy.tolerance)


def judged_metric(metric: str, policy: SpcPolicy) -> bool:
    """Whether `metric` is judged: its kind is one the policy names, and it is not the
    mean, minimum or maximum of an identifier (a column named `id` or `*_id`): identifiers
    are labels, not quantities, and their mean only follows the keys a table was given.
    Every metric is measured and kept either way."""
    kind, _, column = metric.partition(".")
    if kind not in policy.metrics:
        return False
    name = column.lower()
    return not (kind in ("mean", "min", "max") and (name == "id" or name.endswith("_id")))


def accepted_models(graph: ProjectGraph, written: Iterable[str], accept: Mapping[str, str]) -> dict[str, str]:
    """`accept` (model name or unique id -> reason) by unique id, checked before a run
    writes anything. Naming a model the run does not write is an error: an acceptance
    that silently applies to nothing would be lost."""
    by_name = {graph.nodes[uid].name: uid for uid in written}
    ids = set(by_name.values())
    unknown = [name for name in accept if name not in by_name and name not in ids]
    if unknown:
        raise NotFoundError(
            f"--accept names no model this run writes: {', '.join(sorted(unknown))}",
            hint="accept a model whose data this run writes"
            + (f" ({', '.join(sorted(by_name)[:8])})" if by_name else " (it writes none)")
            + "; nothing changed",
        )
    return {by_name.get(name, name): reason for name, reason in accept.items()}


def _alert_finding(finding: Finding) -> AlertFinding:
    limits = finding.verdict.limits
    return AlertFinding(
        model=finding.name,
        unique_id=finding.unique_id,
        metric=finding.metric,
        value=finding.verdict.value,
        centre=limits.centre if limits else finding.verdict.value,
        lower=limits.lower if limits else finding.verdict.value,
        upper=limits.upper if limits else finding.verdict.value,
        baseline=limits.baseline if limits else "level",
        rules=finding.verdict.rules,
        severity=finding.severity,
    )


@dataclass(frozen=True)
class SeriesPoint:
    """One measurement of a metric, judged as it was: against the published points before it."""

    verdict: Verdict
    published: bool  # False: held back (never served) or a check's measurement
    accepted: bool  # a user accepted it: the history starts again here
    release_id: int | None
    kind: str  # deploy | refresh


@dataclass(frozen=True)
class MetricSeries:
    unique_id: str
    name: str
    metric: str
    points: tuple[SeriesPoint, ...]
    settings: Settings

    @property
    def last(self) -> SeriesPoint:
        return self.points[-1]


def metric_series(history: Sequence[MetricRecord], policy: SpcPolicy) -> list[MetricSeries]:
    """Every judged metric of every model in `history` (an environment's metric records),
    each point judged against the published points before it since the last acceptance."""
    settings = settings_of(policy)
    found: dict[tuple[str, str], list[SeriesPoint]] = {}
    names: dict[str, str] = {}
    baseline: dict[tuple[str, str], list[Observation]] = {}
    for record in history:
        if record.outcome == "checked":
            continue
        for measurement in record.measurements:
            names[measurement.unique_id] = measurement.name
            accepted = measurement.unique_id in record.accepted
            for metric, value in sorted(measurement.values.items()):
                if value is None or not judged_metric(metric, policy):
                    continue
                key = (measurement.unique_id, metric)
                points = baseline.setdefault(key, [])
                if accepted:
                    points.clear()
                point = Observation(value, measurement.written_at or record.at)
                verdict = judge(points, point, settings)
                published = record.outcome == "published"
                found.setdefault(key, []).append(
                    SeriesPoint(verdict, published, accepted, record.release_id, record.kind)
                )
                if published:
                    points.append(point)
    return [
        MetricSeries(uid, names[uid], metric, tuple(points), settings)
        for (uid, metric), points in sorted(found.items(), key=lambda item: (names[item[0][0]], item[0][1]))
    ]
