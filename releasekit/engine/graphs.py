"""Parsed project graphs kept in the state store, keyed by commit and parameters, so a run
that needs a commit's graph (a promotion's plan, a check's base) reads it instead of
checking the commit out and parsing it again (seconds on a big project)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from releasekit.dbtcore.artifacts import graph_from_bytes, graph_key, graph_to_bytes
from releasekit.graph import ProjectGraph
from releasekit.state.base import StateStore


def stored_graph(
    store: StateStore, git_sha: str, target: str | None, vars_: Mapping[str, Any]
) -> ProjectGraph | None:
    """The graph a parse of `git_sha` with these parameters left; None if none did."""
    data = store.get_artifact(graph_key(git_sha, target, vars_))
    return graph_from_bytes(data) if data is not None else None


def keep_graph(
    store: StateStore, git_sha: str, target: str | None, vars_: Mapping[str, Any], graph: ProjectGraph
) -> None:
    """Leave `graph` for later runs; a dirty tree's graph is no commit's, and is not kept."""
    if git_sha.endswith("-dirty"):
        return
    key = graph_key(git_sha, target, vars_)
    if not store.has_artifact(key):
        store.put_artifact(key, graph_to_bytes(graph))
