"""Warehouse drift: an environment's schema that no longer serves its live release whole.

The marker names another release or is gone; a view was dropped, repointed or added by
hand; or a view reads a physical relation that is gone (dropped by hand: on DuckDB the
view stays and fails when read; on PostgreSQL only `DROP ... CASCADE` can drop it, and
takes the views with it). `status` and `doctor` report it; a deploy or sync of the
environment repairs it (engine.deploy).
"""

from __future__ import annotations

from dataclasses import dataclass

from releasekit.config.model import EnvironmentConfig
from releasekit.state.base import LedgerEntry
from releasekit.warehouse.base import ReleaseMarker, Warehouse


@dataclass(frozen=True)
class Drift:
    """How `schema` differs from its live release; empty when it serves it whole."""

    schema: str
    marker: str = ""  # what is wrong with the marker, or ""
    missing_views: tuple[str, ...] = ()
    repointed_views: tuple[str, ...] = ()
    extra_views: tuple[str, ...] = ()  # views of releasekit's kind the release does not have
    missing_relations: tuple[str, ...] = ()  # physical relations the live release reads
    physical_schema: str = ""

    def __bool__(self) -> bool:
        return bool(self.problems)

    @property
    def problems(self) -> tuple[str, ...]:
        found = [self.marker] if self.marker else []
        for label, names in (
            ("missing", self.missing_views),
            ("repointed", self.repointed_views),
            ("not in the release", self.extra_views),
        ):
            if names:
                found.append(f"{label} view(s) in {self.schema}: {_some(names)}")
        if self.missing_relations:
            found.append(
                f"physical relation(s) gone from {self.physical_schema}: {_some(self.missing_relations)}"
            )
        return tuple(found)


def warehouse_drift(warehouse: Warehouse, env: EnvironmentConfig, live: LedgerEntry | None) -> Drift:
    marker = warehouse.read_marker(env.schema)
    if live is None:
        problem = f"schema {env.schema} holds release {marker.release_id}, the ledger none" if marker else ""
        return Drift(env.schema, problem)
    wanted = {version.name: version.relation for version in live.models.values()}
    views = warehouse.view_targets(env.schema)
    physical = live.physical_schema
    present = warehouse.relations(physical) if physical else set(wanted.values())
    return Drift(
        env.schema,
        _marker_problem(env.schema, marker, live),
        missing_views=tuple(sorted(set(wanted) - set(views))),
        repointed_views=tuple(sorted(n for n in set(wanted) & set(views) if views[n] != wanted[n])),
        extra_views=tuple(sorted(set(views) - set(wanted))),
        missing_relations=tuple(sorted(set(wanted.values()) - present)),
        physical_schema=physical,
    )


def _marker_problem(schema: str, marker: ReleaseMarker | None, live: LedgerEntry) -> str:
    if marker is None:
        return f"schema {schema} has no release marker (release {live.release_id} expected)"
    if marker.release_id != live.release_id:
        return f"schema {schema} serves release {marker.release_id}, the ledger {live.release_id}"
    return ""


def repair_note(drift: Drift) -> str:
    """What a switch repaired, for its ledger entry; "" when the schema had not drifted."""
    return ("repaired: " + "; ".join(drift.problems)) if drift else ""


def _some(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
