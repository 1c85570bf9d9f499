"""Values and helpers the warehouse tests share (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasekit.warehouse.base import Connection, ReleaseMarker, Warehouse

RunSQL = Callable[[str], list[tuple[Any, ...]]]
MakeTable = Callable[[str, str, int], None]

# The PostgreSQL server the tests use (trust auth); each test gets its own database on it.
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"


@dataclass(frozen=True)
class Backend:
    warehouse: Warehouse
    sql: RunSQL


@dataclass(frozen=True)
class Schemas:
    env: str
    physical: str


def duckdb_connection(path: Path | str) -> Connection:
    return Connection(type="duckdb", database="warehouse", settings={"path": str(path)})


def postgres_dsn(database: str) -> dict[str, Any]:
    """psycopg2.connect keyword arguments for a side connection to `database`."""
    return {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "dbname": database, "connect_timeout": 3}


def postgres_connection(database: str, **settings: Any) -> Connection:
    """What releasekit.dbtcore.profile makes of a dbt-postgres target, plus `settings`."""
    base = {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "password": None, "database": database}
    return Connection(type="postgres", database=database, settings={**base, **settings})


def run_sql(con: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` on an autocommit psycopg2 connection; rows if it returns any."""
    with con.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description is not None else []


def make_marker(release_id: int, env: str = "prod") -> ReleaseMarker:
    return ReleaseMarker(
        env=env,
        release_id=release_id,
        git_sha=f"{release_id:040x}",
        switched_at=f"2024-01-01T00:00:{release_id % 60:02d}Z",
    )
