"""Values and helpers the warehouse tests share (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasekit.warehouse.base import Connection, ReleaseMarker, Warehouse

RunSQL = Callable[[str], list[tuple[Any, ...]]]
MakeTable = Callable[[str, str, int], None]


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


def make_marker(release_id: int, env: str = "prod") -> ReleaseMarker:
    return ReleaseMarker(
        env=env,
        release_id=release_id,
        git_sha=f"{release_id:040x}",
        switched_at=f"2024-01-01T00:00:{release_id % 60:02d}Z",
    )
