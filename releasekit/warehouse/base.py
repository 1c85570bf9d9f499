"""The warehouse seam: a small Protocol with capability flags.

The engine branches on capabilities, never on the adapter's class. Every adapter passes
one contract test suite (tests/warehouse/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from releasekit.config.model import Connection

__all__ = ["MARKER_VIEW", "Capabilities", "Connection", "ReleaseMarker", "Warehouse"]


@dataclass(frozen=True)
class Capabilities:
    transactional_ddl: bool  # many DDL statements commit or roll back as one
    schema_rename: bool  # ALTER SCHEMA ... RENAME works (swap a staged schema in)
    zero_copy_clone: bool = False


@dataclass(frozen=True)
class ReleaseMarker:
    """What an environment's schema says is live; lives beside its views."""

    env: str
    release_id: int
    git_sha: str
    switched_at: str  # ISO 8601, UTC


MARKER_VIEW = "_releasekit_release"


class Warehouse(Protocol):
    capabilities: Capabilities

    def relations(self, schema: str) -> set[str]:
        """Names of every table and view in `schema` (empty if the schema does not exist)."""
        ...

    def switch(
        self,
        schema: str,
        views: Mapping[str, str],
        *,
        physical_schema: str,
        marker: ReleaseMarker,
        drop: Iterable[str] = (),
    ) -> None:
        """Atomically make `schema` hold exactly: view name -> select * from physical relation,
        plus the marker; drop the views named in `drop`. Readers see old or new, never a mix."""
        ...

    def read_marker(self, schema: str) -> ReleaseMarker | None: ...

    def view_targets(self, schema: str) -> dict[str, str]:
        """view name -> the physical relation name it reads, for views releasekit made."""
        ...

    def drop_relations(self, schema: str, names: Iterable[str]) -> None: ...

    def drop_schema(self, schema: str) -> None:
        """Drop the schema and everything in it (a branch environment's teardown); no error
        when it does not exist."""
        ...

    def close(self) -> None: ...


def check_switch_names(views: Mapping[str, str], dropped: Sequence[str]) -> None:
    """Refuse a switch that names the marker as a model view, or switches and drops one
    view at once: both are caller bugs, refused before any statement runs."""
    if MARKER_VIEW in views or MARKER_VIEW in dropped:
        raise ValueError(f"{MARKER_VIEW!r} is releasekit's marker, not a model view")
    both = sorted(set(views) & set(dropped))
    if both:
        raise ValueError(f"views both switched and dropped: {both}")
