"""The dbt project as releasekit sees it: plain values, no dbt objects.

`releasekit.dbtcore` translates dbt's manifest into these; the fingerprint and the
planner work on them alone, so they are testable without dbt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Resource types that become physical relations and consumer views.
MATERIAL_TYPES = frozenset({"model", "seed", "snapshot"})
# Materializations whose relation holds history a fingerprint cannot recreate.
STATEFUL = frozenset({"incremental", "snapshot"})


@dataclass(frozen=True)
class Reads:
    """What a piece of Jinja reads from its surroundings."""

    vars: frozenset[str] = frozenset()
    env_vars: frozenset[str] = frozenset()
    dynamic_vars: bool = False  # var(<expression>): it may read any var


@dataclass(frozen=True)
class Macro:
    unique_id: str
    package: str
    sql: str
    macros: tuple[str, ...] = ()  # unique ids of macros it calls
    reads: Reads = Reads()


@dataclass(frozen=True)
class Node:
    unique_id: str
    name: str
    resource_type: str  # model | seed | snapshot | source
    package: str
    materialized: str  # view | table | incremental | ephemeral | seed | snapshot | ...
    content: str  # the SQL as written; for seeds, the file's checksum
    config: Mapping[str, Any] = field(default_factory=dict)  # content-deciding config only
    parents: tuple[str, ...] = ()  # unique ids of nodes and sources it reads
    macros: tuple[str, ...] = ()  # unique ids of macros it calls directly
    reads: Reads = Reads()
    path: str = ""  # file path relative to the dbt project
    relation: str = ""  # sources: the relation it reads, as rendered
    fqn: tuple[str, ...] = ()
    # Digests of the definitions of the tests that read this node (data and unit tests).
    # They decide whether a reused version must be tested again, never its fingerprint.
    tests: Mapping[str, str] = field(default_factory=dict)
    # Neither of these feeds the fingerprint; `releasekit check` compares them.
    # The columns that identify a row (see dbtcore.translate for the rule); () when none.
    unique_key: tuple[str, ...] = ()
    # Digest of what describes the node without deciding its content: descriptions (its own
    # and its columns'), tags, meta, docs, group, access, grants. "" for sources.
    metadata: str = ""
    # Statistical process control settings of its own, as written in its properties
    # (`meta: {releasekit: {spc: ...}}`; config.spc validates them), and the properties file
    # that holds them, for messages. Neither feeds the fingerprint.
    spc: Mapping[str, Any] = field(default_factory=dict)
    properties_path: str = ""

    @property
    def is_material(self) -> bool:
        """True when the node becomes a relation consumers can read."""
        return self.resource_type in MATERIAL_TYPES and self.materialized != "ephemeral"

    @property
    def is_stateful(self) -> bool:
        return self.materialized in STATEFUL


@dataclass(frozen=True)
class Exposure:
    """A dbt exposure: something outside the project (a dashboard, an app) that reads it."""

    unique_id: str
    name: str
    type: str  # dashboard | notebook | analysis | ml | application
    owner: str = ""  # the owner's name, else their email
    depends_on: tuple[str, ...] = ()  # unique ids of the nodes it reads


@dataclass(frozen=True)
class ProjectGraph:
    project_name: str
    adapter: str
    nodes: Mapping[str, Node]  # models, seeds, snapshots and sources, by unique id
    macros: Mapping[str, Macro]
    vars: Mapping[str, Any] = field(default_factory=dict)  # dbt_project.yml's global vars
    package_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # scoped vars
    cli_vars: Mapping[str, Any] = field(default_factory=dict)  # the environment's parameters
    exposures: Mapping[str, Exposure] = field(default_factory=dict)  # by unique id

    def var_value(self, name: str, package: str) -> Any:
        """The value dbt gives var(name) in `package` (CLI > package-scoped > global)."""
        for layer in (self.cli_vars, self.package_vars.get(package, {}), self.vars):
            if name in layer:
                return layer[name]
        return UNSET

    def env_var_names(self) -> frozenset[str]:
        """Every env var a node or macro of the project reads."""
        reads = [n.reads for n in self.nodes.values()] + [m.reads for m in self.macros.values()]
        return frozenset(name for r in reads for name in r.env_vars)

    def all_var_names(self) -> frozenset[str]:
        scoped = (name for layer in self.package_vars.values() for name in layer)
        return frozenset((*self.cli_vars, *self.vars, *scoped))

    def in_dag_order(self) -> Iterator[Node]:
        """Every node after all of its parents."""
        seen: set[str] = set()
        for unique_id in sorted(self.nodes):
            yield from self._visit(unique_id, seen)

    def _visit(self, unique_id: str, seen: set[str]) -> Iterator[Node]:
        if unique_id in seen or unique_id not in self.nodes:
            return
        seen.add(unique_id)
        node = self.nodes[unique_id]
        for parent in node.parents:
            yield from self._visit(parent, seen)
        yield node

    def children(self) -> dict[str, set[str]]:
        kids: dict[str, set[str]] = {unique_id: set() for unique_id in self.nodes}
        for node in self.nodes.values():
            for parent in node.parents:
                kids.setdefault(parent, set()).add(node.unique_id)
        return kids


UNSET = "<releasekit:unset>"


def digest(value: Any) -> str:
    """A stable hex digest of a string or of any JSON-able value."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
