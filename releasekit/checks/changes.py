"""What a branch changed in the dbt project, compared with its base: pure graph comparison.

Models here are models, seeds and snapshots (ephemeral models included). A model is
compared on its own definition (its fingerprint inputs other than its parents': SQL,
config, macros, vars, env vars, the sources it reads), on its metadata (descriptions,
tags, meta, docs, ...) and on its tests:

- new / removed: in one graph only (a rename is both);
- definition: its own definition changed (metadata or tests may have changed too);
- metadata: only its metadata or tests changed;
- upstream: nothing of its own changed, but a parent's did, so its data may differ.

What reads a model comes from the branch graph; for a removed model, from the base graph,
as that is what reads it today.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from releasekit.engine.fingerprint import Fingerprint, tests_digest
from releasekit.engine.plan import explain
from releasekit.graph import MATERIAL_TYPES, Node, ProjectGraph
from releasekit.state.base import ModelVersion

ChangeKind = Literal["new", "removed", "definition", "metadata", "upstream"]
EXPOSURE_PREFIX = "exposure:"  # dependants that are exposures, as dbt's selector names them
METADATA_REASON = "description, tags, meta or docs changed"
_Keep = Callable[[str], bool]


@dataclass(frozen=True)
class ModelChange:
    unique_id: str
    name: str
    kind: ChangeKind
    reasons: tuple[str, ...]
    before: Node | None = None  # in the base graph; None when new
    after: Node | None = None  # in the branch graph; None when removed
    downstream: tuple[str, ...] = ()  # names of the models reading it, directly or not
    exposures: tuple[str, ...] = ()  # names of the exposures reading it or its downstream
    dependants: tuple[str, ...] = ()  # what reads it directly: model names, `exposure:<name>`
    same_version: bool = False  # equal fingerprints: both environments read one relation


def detect_changes(
    base: ProjectGraph,
    branch: ProjectGraph,
    base_prints: Mapping[str, Fingerprint],
    branch_prints: Mapping[str, Fingerprint],
) -> tuple[ModelChange, ...]:
    """Every model the branch added, removed or changed, or whose parents changed: the
    branch's in DAG order, then the removed ones. Fingerprints come from
    `engine.fingerprint.fingerprint_graph` on each graph."""
    reach_branch, reach_base = _Reach(branch), _Reach(base)
    found: list[ModelChange] = []
    for node in _models(branch):
        old = base.nodes.get(node.unique_id)
        if old is None:
            new = ModelChange(node.unique_id, node.name, "new", ("new model",), after=node)
            found.append(reach_branch.attach(new))
            continue
        change = _compare(old, node, base_prints[old.unique_id], branch_prints[node.unique_id], branch)
        if change is not None:
            found.append(reach_branch.attach(change))
    for old in _models(base):
        if old.unique_id not in branch.nodes:
            removed = ModelChange(old.unique_id, old.name, "removed", ("removed from the project",), old)
            found.append(reach_base.attach(removed, keep=lambda uid: uid in branch.nodes))
    return tuple(found)


def _models(graph: ProjectGraph) -> list[Node]:
    return [node for node in graph.in_dag_order() if node.resource_type in MATERIAL_TYPES]


def _compare(
    old: Node, new: Node, was: Fingerprint, now: Fingerprint, graph: ProjectGraph
) -> ModelChange | None:
    own_was, own_now = _own(was), _own(now)
    described = _metadata_reasons(old, new)
    same = was.digest == now.digest
    if own_was != own_now:
        kind: ChangeKind = "definition"
        reasons = _explain(Fingerprint(now.digest, own_now), Fingerprint(was.digest, own_was), new, graph)
    elif described:
        kind, reasons = "metadata", ()
    elif not same:
        kind, reasons = "upstream", _explain(now, was, new, graph)
    else:
        return None
    return ModelChange(new.unique_id, new.name, kind, reasons + described, old, new, same_version=same)


def _own(fingerprint: Fingerprint) -> dict[str, str]:
    """The inputs a model decides itself: a parent model's fingerprint is its parent's change;
    a source has no change of its own to report, so the model reading it carries it."""
    return {
        key: value
        for key, value in fingerprint.inputs.items()
        if not key.startswith("parent:") or key.startswith("parent:source.")
    }


def _explain(now: Fingerprint, was: Fingerprint, node: Node, graph: ProjectGraph) -> tuple[str, ...]:
    version = ModelVersion(node.unique_id, node.name, was.digest, "", was.inputs)
    return explain(now, version, graph, relation_exists=False)


def _metadata_reasons(old: Node, new: Node) -> tuple[str, ...]:
    reasons = (METADATA_REASON,) if old.metadata != new.metadata else ()
    return reasons + (("tests changed",) if tests_digest(old) != tests_digest(new) else ())


class _Reach:
    """Who reads what in one graph, worked out once."""

    def __init__(self, graph: ProjectGraph) -> None:
        self._graph = graph
        self._children = graph.children()
        self._exposures: dict[str, list[str]] = {}
        for exposure in graph.exposures.values():
            for unique_id in exposure.depends_on:
                self._exposures.setdefault(unique_id, []).append(exposure.name)

    def attach(self, change: ModelChange, keep: _Keep = lambda unique_id: True) -> ModelChange:
        """`change` with what reads it; direct dependants only where `keep` says so."""
        below = self._descendants(change.unique_id)
        readers = self._children.get(change.unique_id, set())
        exposures = {name for uid in (change.unique_id, *below) for name in self._exposures.get(uid, ())}
        direct = sorted(self._exposures.get(change.unique_id, ()))
        return dataclasses.replace(
            change,
            downstream=tuple(sorted(self._names(below))),
            exposures=tuple(sorted(exposures)),
            dependants=(
                *sorted(self._names(uid for uid in readers if keep(uid))),
                *(EXPOSURE_PREFIX + name for name in direct),
            ),
        )

    def _descendants(self, unique_id: str) -> set[str]:
        seen: set[str] = set()
        stack = [unique_id]
        while stack:
            for child in self._children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def _names(self, unique_ids: Iterable[str]) -> list[str]:
        return [self._graph.nodes[uid].name for uid in unique_ids if uid in self._graph.nodes]
