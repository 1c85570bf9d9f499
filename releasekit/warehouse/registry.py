"""Which adapter serves which warehouse type: a dict, so the core never asks for a class."""

from __future__ import annotations

from collections.abc import Callable

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import Connection, Warehouse
from releasekit.warehouse.duckdb import DuckDBWarehouse

ADAPTERS: dict[str, Callable[[Connection], Warehouse]] = {
    "duckdb": DuckDBWarehouse,
}


def connect(conn: Connection) -> Warehouse:
    """Open the warehouse `conn` describes with the adapter registered for its type."""
    adapter = ADAPTERS.get(conn.type)
    if adapter is None:
        supported = ", ".join(sorted(ADAPTERS))
        raise WarehouseError(
            f"releasekit has no adapter for warehouse type {conn.type!r} "
            f"(database {conn.database!r}); supported: {supported}",
            hint="PostgreSQL support comes with the postgres extra: pip install 'releasekit[postgres]'",
        )
    return adapter(conn)
