"""Which adapter serves which warehouse type: a dict, so the core never asks for a class."""

from __future__ import annotations

from collections.abc import Callable

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import Connection, Warehouse
from releasekit.warehouse.duckdb import DuckDBWarehouse

# What each type needs installed: the dbt adapter that brings its driver.
PACKAGES: dict[str, str] = {
    "duckdb": "dbt-duckdb, which comes with releasekit (pip install releasekit)",
    "postgres": "dbt-postgres, with the postgres extra: pip install 'releasekit[postgres]'",
}


def _postgres(conn: Connection) -> Warehouse:
    # Imported on use: psycopg2 comes with the optional postgres extra.
    try:
        from releasekit.warehouse.postgres import PostgresWarehouse
    except ImportError as exc:
        if not (exc.name or "").startswith("psycopg2"):
            raise
        raise WarehouseError(
            f"cannot open PostgreSQL database {conn.database!r}: psycopg2 is not installed",
            hint=f"PostgreSQL support needs {PACKAGES['postgres']}",
        ) from exc
    return PostgresWarehouse(conn)


ADAPTERS: dict[str, Callable[[Connection], Warehouse]] = {
    "duckdb": DuckDBWarehouse,
    "postgres": _postgres,
}


def connect(conn: Connection) -> Warehouse:
    """Open the warehouse `conn` describes with the adapter registered for its type."""
    adapter = ADAPTERS.get(conn.type)
    if adapter is None:
        supported = ", ".join(sorted(ADAPTERS))
        needs = "; ".join(f"{kind} needs {PACKAGES[kind]}" for kind in sorted(ADAPTERS) if kind in PACKAGES)
        raise WarehouseError(
            f"releasekit has no adapter for warehouse type {conn.type!r} "
            f"(database {conn.database!r}); supported: {supported}",
            hint=f"point the dbt target at a supported warehouse: {needs}",
        )
    return adapter(conn)
