"""Warehouses behind one small Protocol (base), identifiers made in one place (naming).

Open one with `releasekit.warehouse.registry.connect(connection)`. This package root
stays free of database drivers so that importing the Protocol costs nothing.
"""

from __future__ import annotations

from releasekit.warehouse.base import (
    MARKER_VIEW,
    Capabilities,
    Connection,
    ReleaseMarker,
    Warehouse,
)

__all__ = ["MARKER_VIEW", "Capabilities", "Connection", "ReleaseMarker", "Warehouse"]
