"""A deploy plan: a frozen value saying, model by model, what a deploy would do and why.

`make_plan` decides; `engine.deploy` applies the same plan; `releasekit plan` shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Literal

from releasekit.config.secrets import other_key
from releasekit.engine.data import MIXED, reads_live, version_digest
from releasekit.engine.fingerprint import Fingerprint, tests_digest
from releasekit.engine.names import check_view_names
from releasekit.graph import Node, ProjectGraph
from releasekit.state.base import LedgerEntry, ModelVersion
from releasekit.warehouse.naming import physical_name

# build: no verified physical relation has this version yet.
# test:  the version exists and is reused, but the tests that read it changed: run them.
# reuse: the version exists and was tested as it is.
Action = Literal["build", "test", "reuse"]
TESTS_KEY = "tests"  # recorded beside the fingerprint inputs; not one of them
NEWER_PARENTS = "its parents serve newer data than its version of this code was built on"


@dataclass(frozen=True)
class ModelStep:
    unique_id: str
    name: str
    resource_type: str
    action: Action
    relation: str  # physical relation name
    fingerprint: str
    reasons: tuple[str, ...] = ()
    stateful: bool = False

    tests: str = ""  # digest of the tests that read it
    # What the relation holds (a reused version's record; a build's is stamped before it
    # runs, engine.data): source -> data version, and when it was written.
    data: Mapping[str, str] = field(default_factory=dict)
    written_at: str = ""

    def version(self, inputs: Mapping[str, str]) -> ModelVersion:
        recorded = {**inputs, TESTS_KEY: self.tests}
        return ModelVersion(
            self.unique_id, self.name, self.fingerprint, self.relation, recorded, self.data, self.written_at
        )


@dataclass(frozen=True)
class Plan:
    env: str
    schema: str
    physical_schema: str
    git_sha: str
    params: Mapping[str, Any]
    steps: tuple[ModelStep, ...]  # in DAG order
    models: Mapping[str, ModelVersion]  # the release this plan would make live
    live: LedgerEntry | None = None
    stale: tuple[str, ...] = ()  # relations that exist but were never verified: rebuilt
    views_added: tuple[str, ...] = ()
    views_switched: tuple[str, ...] = ()
    views_dropped: tuple[str, ...] = field(default=())
    # What a deploy of this plan would meet before building (a gate that refuses it).
    warnings: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()  # how the schema drifted from the live release: a deploy repairs it

    @property
    def builds(self) -> tuple[ModelStep, ...]:
        return tuple(step for step in self.steps if step.action == "build")

    @property
    def retests(self) -> tuple[ModelStep, ...]:
        return tuple(step for step in self.steps if step.action == "test")

    @property
    def reuses(self) -> tuple[ModelStep, ...]:
        """Every step served by an existing relation, retested or not."""
        return tuple(step for step in self.steps if step.action != "build")

    @property
    def views(self) -> dict[str, str]:
        return {version.name: version.relation for version in self.models.values()}

    @property
    def same_release_as_live(self) -> bool:
        live = self.live
        return live is not None and _relations(live.models) == _relations(self.models)

    @property
    def is_noop(self) -> bool:
        """Nothing to build and nothing that a new release would change."""
        live = self.live
        return (
            not self.builds
            and not self.retests
            and self.same_release_as_live
            and live is not None
            and live.git_sha == self.git_sha
            and dict(live.params) == dict(self.params)
        )


@dataclass(frozen=True)
class PlanInputs:
    env: str
    schema: str
    physical_schema: str
    git_sha: str
    params: Mapping[str, Any]
    live: LedgerEntry | None
    existing: Set[str]  # relations present in the physical schema
    # Relations some recorded release tested and switched to, with what each holds.
    versions: Mapping[str, ModelVersion]
    # Other environments' live versions, to explain a first build ("var x differs from dev").
    elsewhere: Mapping[str, tuple[str, ModelVersion]] = field(default_factory=dict)
    max_name_bytes: int | None = None  # the warehouse cuts longer view names (None: no limit)
    # Relations live runs of other environments claim (building or reusing): never stale.
    in_use: Set[str] = frozenset()
    # Versions to serve first where their code is the code planned: the live release's, and
    # for a promotion its source's before them. A refresh gives a version a relation of its
    # own (engine.refresh), so an unchanged model keeps the data it serves.
    preferred: Mapping[str, ModelVersion] = field(default_factory=dict)


def make_plan(graph: ProjectGraph, prints: Mapping[str, Fingerprint], given: PlanInputs) -> Plan:
    material = [node for node in graph.in_dag_order() if node.is_material]
    check_view_names(material, project=graph.project_name, max_bytes=given.max_name_bytes)
    chosen: dict[str, ModelStep] = {}
    for node in material:
        chosen[node.unique_id] = _step(node, prints[node.unique_id], graph, given, chosen)
    steps = tuple(chosen.values())
    models = {step.unique_id: step.version(prints[step.unique_id].inputs) for step in steps}
    stale = tuple(
        s.relation
        for s in steps
        if s.action == "build" and s.relation in given.existing and s.relation not in given.in_use
    )
    old = {v.name: v.relation for v in given.live.models.values()} if given.live else {}
    new = {v.name: v.relation for v in models.values()}
    return Plan(
        env=given.env,
        schema=given.schema,
        physical_schema=given.physical_schema,
        git_sha=given.git_sha,
        params=dict(given.params),
        steps=steps,
        models=models,
        live=given.live,
        stale=stale,
        views_added=tuple(sorted(set(new) - set(old))),
        views_switched=tuple(sorted(n for n in set(new) & set(old) if new[n] != old[n])),
        views_dropped=tuple(sorted(set(old) - set(new))),
    )


def _step(
    node: Node,
    fingerprint: Fingerprint,
    graph: ProjectGraph,
    given: PlanInputs,
    chosen: Mapping[str, ModelStep],
) -> ModelStep:
    relation = _relation(node, fingerprint, graph, given, chosen)
    reusable = relation in given.existing and relation in given.versions
    live_version = given.live.models.get(node.unique_id) if given.live else None
    tests = tests_digest(node)
    action: Action = "build"
    reasons: tuple[str, ...] = ()
    if not reusable and relation != physical_name(node.name, fingerprint.digest):
        reasons = (NEWER_PARENTS,)
    elif not reusable:
        reasons = _reasons(node, fingerprint, live_version, graph, given)
    elif _tests_changed(node, relation, given, tests):
        action, reasons = "test", ("tests changed",)
    else:
        action, reasons = "reuse", _reuse_reasons(node, relation, live_version, given, tests)
    return ModelStep(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=node.resource_type,
        action=action,
        relation=relation,
        fingerprint=fingerprint.digest,
        reasons=reasons,
        stateful=node.is_stateful,
        tests=tests,
        data=given.versions[relation].data if reusable else {},
        written_at=given.versions[relation].written_at if reusable else "",
    )


def _relation(
    node: Node,
    fingerprint: Fingerprint,
    graph: ProjectGraph,
    given: PlanInputs,
    chosen: Mapping[str, ModelStep],
) -> str:
    """The preferred version of this code, when its relation is there and verified; else
    the relation a deploy builds it into: named by its code, unless a version by that name
    holds data older than its parents now serve (the environment was refreshed or rebased
    since it was built), then named by its code and its parents' relations."""
    preferred = given.preferred.get(node.unique_id)
    if (
        preferred is not None
        and preferred.fingerprint == fingerprint.digest
        and preferred.relation in given.existing
        and preferred.relation in given.versions
    ):
        return preferred.relation
    plain = physical_name(node.name, fingerprint.digest)
    held = given.versions.get(plain) if plain in given.existing else None
    if held is None or _agrees(held.data, _parents_data(node, graph, chosen)):
        return plain
    parents = sorted(chosen[uid].relation for uid in node.parents if uid in chosen)
    return physical_name(node.name, version_digest(fingerprint.digest, {}, ",".join(parents)))


def _parents_data(node: Node, graph: ProjectGraph, chosen: Mapping[str, ModelStep]) -> dict[str, str]:
    """The data versions the planned parents hold (views and ephemeral models looked
    through; sources, read live, left out)."""
    found: dict[str, str] = {}
    for uid in node.parents:
        parent = graph.nodes.get(uid)
        if parent is None or parent.resource_type == "source":
            continue
        if parent.is_material and not reads_live(parent):
            found.update(chosen[uid].data if uid in chosen else {})
        else:
            found.update(_parents_data(parent, graph, chosen))
    return found


def _agrees(recorded: Mapping[str, str], parents: Mapping[str, str]) -> bool:
    """A version built on what its parents hold now (unknown data agrees: nothing to tell)."""
    return all(recorded.get(source, value) == value for source, value in parents.items() if value != MIXED)


def _tests_changed(node: Node, relation: str, given: PlanInputs, tests: str) -> bool:
    """Whether no environment verified the reused version with the tests that read the
    model now: neither its own record nor that of another environment serving it (a
    promotion's source ran them). A version recorded without them is tested again."""
    return all(record.inputs.get(TESTS_KEY) != tests for record in _records(node, relation, given))


def _records(node: Node, relation: str, given: PlanInputs) -> list[ModelVersion]:
    records = [given.versions[relation]]
    other = given.elsewhere.get(node.unique_id)
    return [*records, other[1]] if other is not None and other[1].relation == relation else records


def _reuse_reasons(
    node: Node, relation: str, live: ModelVersion | None, given: PlanInputs, tests: str
) -> tuple[str, ...]:
    """Why a version is reused that the environment does not serve as it is: who built it,
    or who ran the tests that read it now."""
    other = given.elsewhere.get(node.unique_id)
    by = other[0] if other is not None and other[1].relation == relation else None
    if live is not None and live.relation == relation:
        return () if live.inputs.get(TESTS_KEY) == tests or by is None else (f"tests verified by {by}",)
    return (f"built by {by}",) if by else ("built and verified before",)


def _reasons(
    node: Node, fingerprint: Fingerprint, live: ModelVersion | None, graph: ProjectGraph, given: PlanInputs
) -> tuple[str, ...]:
    if live is None and node.unique_id in given.elsewhere:
        env, other = given.elsewhere[node.unique_id]
        return tuple(
            r.replace(" changed", f" differs from {env}") for r in explain(fingerprint, other, graph, False)
        )
    if given.live is None:
        return ("new: first release of this environment",)
    return explain(fingerprint, live, graph, physical_name(node.name, fingerprint.digest) in given.existing)


def explain(
    fingerprint: Fingerprint, live: ModelVersion | None, graph: ProjectGraph, relation_exists: bool
) -> tuple[str, ...]:
    """Why a model version must be built, in the words a reviewer wants."""
    if live is None:
        return ("new model",)
    if live.fingerprint == fingerprint.digest:
        return ("built but never verified: rebuilt",) if relation_exists else ("physical relation missing",)
    keys = sorted((set(fingerprint.inputs) | set(live.inputs)) - {TESTS_KEY})
    changed = [k for k in keys if fingerprint.inputs.get(k) != live.inputs.get(k)]
    node = graph.nodes.get(live.unique_id)
    seed = node is not None and node.resource_type == "seed"
    reasons = tuple(
        dict.fromkeys(
            "seed data changed"
            if seed and k == "sql"
            else _other_key_reason(k)
            if other_key(fingerprint.inputs.get(k), live.inputs.get(k))
            else _reason(k, graph)
            for k in changed
        )
    )
    return reasons or ("fingerprint changed",)


def _other_key_reason(key: str) -> str:
    name = key.partition(":")[2]
    return f"env var {name} hashed with another fingerprint key (set RELEASEKIT_FINGERPRINT_KEY)"


def _reason(key: str, graph: ProjectGraph) -> str:
    kind, _, name = key.partition(":")
    if kind == "sql":
        return "SQL changed"
    if kind == "config":
        return "config changed"
    if kind == "macro":
        return f"macro {name.rsplit('.', 1)[-1]} changed"
    if kind == "var":
        return f"var {name} changed"
    if kind == "env_var":
        return f"env var {name} changed"
    if kind == "parent":
        parent = graph.nodes.get(name)
        return f"parent {parent.name if parent else name} changed"
    return f"{kind} changed"


def _relations(models: Mapping[str, ModelVersion]) -> dict[str, str]:
    return {v.name: v.relation for v in models.values()}
