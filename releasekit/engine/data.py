"""Data versions: what a model's sources held when its relation was written.

A source's *data version* is read in the warehouse, one aggregate query per source
(`Warehouse.data_version`):
- `checksum` (the default): the row count and an order-independent sum of a hash of every
  row. Any insert, update or delete changes it, except by a hash collision.
- `rowcount`: the row count alone. Cheap on any size, but blind to updates and to deletes
  balanced by as many inserts.

A model version records, for every source it reads (through its parents), the data version
that source had when the version was written (`ModelVersion.data`). A table, incremental
model or snapshot is out of date when what it records differs from what its parents would
give it now; a view reads its inputs live, and is written again only when a relation it
reads was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from releasekit.errors import WarehouseError
from releasekit.graph import Node, ProjectGraph, digest
from releasekit.state.base import ModelVersion
from releasekit.warehouse.base import Warehouse

DataMode = Literal["checksum", "rowcount"]
DATA_MODES: tuple[DataMode, ...] = ("checksum", "rowcount")
DEFAULT_DATA_MODE: DataMode = "checksum"
# What a version records for a source it read through parents that disagreed (one parent
# written on older data than another): never equal to a data version, so it is out of date.
MIXED = "mixed"


class SourceUnreadable(Exception):
    """A source whose data version could not be read: it does not exist, or is not allowed."""

    def __init__(self, source: Node, reason: str) -> None:
        super().__init__(f"{source.unique_id} ({source.relation}): {reason}")
        self.source = source
        self.reason = reason


def upstream_sources(graph: ProjectGraph) -> dict[str, frozenset[str]]:
    """Every node's sources, read directly or through any of its ancestors."""
    found: dict[str, frozenset[str]] = {}
    for node in graph.in_dag_order():
        if node.resource_type == "source":
            found[node.unique_id] = frozenset({node.unique_id})
            continue
        found[node.unique_id] = frozenset().union(*(found.get(p, frozenset()) for p in node.parents))
    return found


def read_data_versions(
    warehouse: Warehouse, graph: ProjectGraph, sources: Iterable[str], mode: DataMode
) -> dict[str, str]:
    """source unique id -> its data version now. SourceUnreadable names the first source
    whose data version the warehouse could not read."""
    versions: dict[str, str] = {}
    for unique_id in sorted(set(sources)):
        node = graph.nodes[unique_id]
        try:
            versions[unique_id] = warehouse.data_version(node.relation, mode)
        except WarehouseError as exc:
            raise SourceUnreadable(node, exc.message) from None
    return versions


def expected_data(
    node: Node, graph: ProjectGraph, chosen: Mapping[str, ModelVersion], now: Mapping[str, str]
) -> dict[str, str]:
    """The data version `node` would record if it were written now on its parents as
    `chosen` (the versions a release serves) and sources as `now`. Ephemeral models and
    views hold no data of their own: they are looked through to what they read."""
    merged: dict[str, str] = {}
    for source, version in _parent_data(node, graph, chosen, now):
        merged[source] = version if merged.get(source, version) == version else MIXED
    return merged


def _parent_data(
    node: Node, graph: ProjectGraph, chosen: Mapping[str, ModelVersion], now: Mapping[str, str]
) -> Iterable[tuple[str, str]]:
    for uid in node.parents:
        parent = graph.nodes.get(uid)
        if parent is None:
            continue
        if parent.resource_type == "source":
            yield uid, now.get(uid, MIXED)
        elif parent.is_material and not reads_live(parent):
            yield from (chosen[uid].data.items() if uid in chosen else ())
        else:  # ephemeral (inlined here) or a view (read when queried): what they read
            yield from _parent_data(parent, graph, chosen, now)


def version_digest(fingerprint: str, data: Mapping[str, str], base: str = "") -> str:
    """The identity of a version written by a refresh: its code, the data it was written
    on, and for an incremental model or snapshot the relation it started from. Equal
    digests, equal contents: two environments refreshing equal code on equal data share it."""
    return digest({"code": fingerprint, "data": dict(data), "base": base})


def reads_live(node: Node) -> bool:
    """A view: its relation reads its inputs when queried, so it never holds old data."""
    return node.materialized == "view"
