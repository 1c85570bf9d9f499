"""A parsed project graph as a stored artifact, so later runs need not parse that commit again.

A deploy saves the graph it parsed, keyed by commit and parameters (`graph_key`); `releasekit
check` reads the base environment's graph from there instead of checking the base commit
out and parsing it (seconds on a big project). It is a cache: a missing, corrupt or older
artifact reads as None and the caller parses.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from releasekit.graph import Exposure, Macro, Node, ProjectGraph, Reads, digest

FORMAT = "releasekit.graph/1"


def graph_key(git_sha: str, target: str | None, vars_: Mapping[str, Any]) -> str:
    """The artifact name of the graph dbt parses at `git_sha` with these parameters."""
    params = digest({"target": target, "vars": dict(vars_)})[:16]
    return f"graph-{git_sha}-{params}.json"


def graph_to_bytes(graph: ProjectGraph) -> bytes:
    document = {"format": FORMAT, "graph": dataclasses.asdict(graph)}
    return json.dumps(document, sort_keys=True, default=_sets).encode("utf-8")


def graph_from_bytes(data: bytes) -> ProjectGraph | None:
    try:
        document = json.loads(data)
        if document.get("format") != FORMAT:
            return None
        return _graph(document["graph"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _sets(value: object) -> object:
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _graph(raw: dict[str, Any]) -> ProjectGraph:
    return ProjectGraph(
        project_name=raw["project_name"],
        adapter=raw["adapter"],
        nodes={uid: _node(node) for uid, node in raw["nodes"].items()},
        macros={uid: _macro(macro) for uid, macro in raw["macros"].items()},
        vars=raw["vars"],
        package_vars=raw["package_vars"],
        cli_vars=raw["cli_vars"],
        exposures={uid: _exposure(exposure) for uid, exposure in raw["exposures"].items()},
    )


def _reads(raw: dict[str, Any]) -> Reads:
    return Reads(frozenset(raw["vars"]), frozenset(raw["env_vars"]), bool(raw["dynamic_vars"]))


def _macro(raw: dict[str, Any]) -> Macro:
    return Macro(raw["unique_id"], raw["package"], raw["sql"], tuple(raw["macros"]), _reads(raw["reads"]))


def _node(raw: dict[str, Any]) -> Node:
    tuples = {key: tuple(raw[key]) for key in ("parents", "macros", "fqn", "unique_key")}
    return Node(**{**raw, **tuples, "reads": _reads(raw["reads"])})


def _exposure(raw: dict[str, Any]) -> Exposure:
    return Exposure(**{**raw, "depends_on": tuple(raw["depends_on"])})
