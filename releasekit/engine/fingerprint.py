"""Fingerprints: a hash of everything that decides a model's content.

A node's fingerprint covers its SQL as written (any edit counts, whitespace and comments
included: releasekit does not guess which edits are harmless), its content-deciding
config (placement and metadata keys excluded), the source of every project or package
macro it calls (transitively; dbt's and the adapter's own macros are versioned with the
tool and left out), the values of exactly the vars and env vars it reads (directly or
through those macros), the adapter, and its parents' fingerprints (a Merkle DAG).
An env var's value is hashed with a keyed hash (config.secrets) that no state document
holds, so neither `inputs` nor the digest lets anyone test guesses of a secret.

Each component is kept as a separate digest in `inputs`, so a plan can say *why* a
model must be rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from releasekit.config.secrets import keyed_hasher
from releasekit.graph import UNSET, Node, ProjectGraph, Reads, digest

VERSION = "releasekit-fingerprint/1"


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    inputs: Mapping[str, str]


def fingerprint_graph(graph: ProjectGraph, environ: Mapping[str, str]) -> dict[str, Fingerprint]:
    """Fingerprints of every node in the graph, parents before children."""
    closures = _MacroClosures(graph)
    hash_value = keyed_hasher(environ)
    prints: dict[str, Fingerprint] = {}
    for node in graph.in_dag_order():
        inputs = _inputs(node, graph, closures, _EnvVars(environ, hash_value), prints)
        prints[node.unique_id] = Fingerprint(digest(f"{VERSION}\n{digest(inputs)}"), inputs)
    return prints


def _inputs(
    node: Node,
    graph: ProjectGraph,
    closures: _MacroClosures,
    env_vars: _EnvVars,
    prints: Mapping[str, Fingerprint],
) -> dict[str, str]:
    if node.resource_type == "source":
        return {"relation": digest(node.relation)}
    macros = closures.of(node.macros)
    inputs = {"adapter": graph.adapter, "sql": digest(node.content), "config": digest(dict(node.config))}
    inputs |= {f"macro:{uid}": digest(graph.macros[uid].sql) for uid in sorted(macros)}
    reads = _merge([node.reads, *(graph.macros[uid].reads for uid in macros)])
    var_names = graph.all_var_names() if reads.dynamic_vars else reads.vars
    inputs |= {f"var:{name}": digest(graph.var_value(name, node.package)) for name in sorted(var_names)}
    inputs |= {f"env_var:{name}": env_vars.digest(name) for name in sorted(reads.env_vars)}
    inputs |= {f"parent:{uid}": prints[uid].digest for uid in sorted(node.parents) if uid in prints}
    return inputs


@dataclass(frozen=True)
class _EnvVars:
    environ: Mapping[str, str]
    hash_value: Callable[[str], str]

    def digest(self, name: str) -> str:
        return self.hash_value(self.environ.get(name, UNSET))


def _merge(reads: list[Reads]) -> Reads:
    return Reads(
        vars=frozenset().union(*(r.vars for r in reads)),
        env_vars=frozenset().union(*(r.env_vars for r in reads)),
        dynamic_vars=any(r.dynamic_vars for r in reads),
    )


class _MacroClosures:
    """Transitive macro calls, memoised per macro (macros are shared by many models)."""

    def __init__(self, graph: ProjectGraph) -> None:
        self._graph = graph
        self._memo: dict[str, frozenset[str]] = {}

    def of(self, roots: tuple[str, ...]) -> frozenset[str]:
        return frozenset().union(*(self._closure(uid) for uid in roots if uid in self._graph.macros))

    def _closure(self, root: str) -> frozenset[str]:
        if root in self._memo:
            return self._memo[root]
        seen, stack = {root}, [root]
        while stack:
            for callee in self._graph.macros[stack.pop()].macros:
                if callee in self._graph.macros and callee not in seen:
                    seen.add(callee)
                    stack.append(callee)
        self._memo[root] = frozenset(seen)
        return self._memo[root]


def tests_digest(node: Node) -> str:
    """One digest of every test that reads the node: a reused version whose tests changed
    is tested again."""
    return digest(dict(node.tests))
