"""The names a release serves: one view per model, seed and snapshot, named after it.

Refused at plan time, before anything is built or recorded:
- names that differ only in case (`Orders` beside `orders`), or equal names from two
  packages: they are one view on DuckDB, whose identifiers ignore case, so one would
  silently replace the other. PostgreSQL would keep quoted `"Orders"` and `"orders"`
  apart, but releasekit refuses them on every warehouse, so a project serves the same
  views wherever it runs;
- releasekit's own names in an environment's schema: its release marker view
  `_releasekit_release`, and every name starting with `_releasekit` (kept for it);
- names longer than the warehouse keeps (PostgreSQL cuts identifiers at 63 bytes, so the
  view would silently get another name, perhaps another view's).
"""

from __future__ import annotations

from collections.abc import Iterable

from releasekit.errors import ProjectError
from releasekit.graph import Node
from releasekit.warehouse.base import MARKER_VIEW

RESERVED_PREFIX = "_releasekit"  # the marker view's, and any view releasekit may add


def check_view_names(nodes: Iterable[Node], *, project: str = "", max_bytes: int | None = None) -> None:
    """ProjectError naming the first clash, reserved or too long name among the served
    nodes (`project`: the root package, left unnamed in messages; `max_bytes`: the
    warehouse's identifier limit, None for none)."""
    seen: dict[str, Node] = {}
    for node in nodes:
        key = node.name.lower()
        size = len(node.name.encode())
        if max_bytes is not None and size > max_bytes:
            raise ProjectError(
                f"{_describe(node, project)}: its view name is {size} bytes, and the warehouse cuts "
                f"names at {max_bytes} bytes, so the view would silently get another name",
                hint=f"rename the {node.resource_type} to at most {max_bytes} bytes",
            )
        if key.startswith(RESERVED_PREFIX):
            raise ProjectError(
                f"{_describe(node, project)}: names starting with {RESERVED_PREFIX!r} are releasekit's "
                f"(its release marker view {MARKER_VIEW!r} sits beside the views in every environment)",
                hint=f"rename the {node.resource_type}",
            )
        if key in seen:
            first = seen[key]
            raise ProjectError(
                f"{_describe(first, project)} and {_describe(node, project)} would both be served as "
                f"view {key!r}: "
                "view names are compared without case (DuckDB), so one would replace the other",
                hint="rename one of them; releasekit refuses names that differ only in case on every "
                "warehouse, so the project serves the same views wherever it runs",
            )
        seen[key] = node


def _describe(node: Node, project: str) -> str:
    where = f" ({node.path})" if node.path else ""
    package = f" of package {node.package}" if node.package and node.package != project else ""
    return f"{node.resource_type} {node.name!r}{package}{where}"
