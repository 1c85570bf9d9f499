"""gc: drop physical relations no retained release or live environment uses, and the
temp/backup relations interrupted dbt runs leave behind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from releasekit.config.model import DEFAULT_RETENTION
from releasekit.engine.runtime import RunContext
from releasekit.errors import StateError
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry, LedgerScan
from releasekit.warehouse.naming import is_dbt_leftover


@dataclass(frozen=True)
class GcResult:
    physical_schema: str
    dropped: tuple[str, ...]
    kept: int
    dry_run: bool
    # Unused relations kept because something releasekit did not make reads them (a
    # user's view on a physical relation): name -> those readers.
    held: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Ledgers that do not read, each named with its problem: gc cannot tell what they
    # serve or retain, so it dropped nothing in this physical schema.
    blocked: tuple[str, ...] = ()


def collect_garbage(runs: Sequence[RunContext], *, dry_run: bool = False) -> list[GcResult]:
    """Targets that share a warehouse share its physical schema: keep what any of them
    retains. gc runs beside deploys: it decides and drops under the store's planning lock,
    and keeps whatever a live run of any environment claims (what it builds, with dbt's
    temporary relations for it, and what it reuses); a deploy claims under the same lock
    before it builds."""
    by_warehouse: dict[tuple[str, str], list[RunContext]] = {}
    for run in runs:
        key = (repr(sorted(run.connection.settings.items())), run.physical_schema)
        by_warehouse.setdefault(key, []).append(run)
    if not runs:
        return []
    with runs[0].store.planning_lock(owner=runs[0].who):
        scan = runs[0].store.scan_ledgers()
        return [_collect(group, scan, dry_run) for group in by_warehouse.values()]


def _collect(runs: list[RunContext], scan: LedgerScan, dry_run: bool) -> GcResult:
    first = runs[0]
    with first.warehouse() as warehouse:
        present = warehouse.relations(first.physical_schema)
        if scan.unreadable:
            # An unreadable ledger's releases are unknown (its physical schema too): any
            # relation could be one it serves or retains. Keep them all, and say why.
            blocked = tuple(ledger.problem for ledger in scan.unreadable)
            return GcResult(first.physical_schema, (), len(present), dry_run, blocked=blocked)
        keep = _recorded(scan, {t.name for t in runs})
        for run in runs:
            keep |= _retained(run.store.entries(run.name), run.env.retention)
            keep |= set(warehouse.view_targets(run.env.schema).values())
        claimed = _claimed(first)
        unused = (name for name in present if name not in keep or is_dbt_leftover(name))
        doomed = sorted(name for name in unused if name not in claimed and not _building(name, claimed))
        held = {
            name: tuple(found) for name, found in warehouse.readers(first.physical_schema, doomed).items()
        }
        doomed = [name for name in doomed if name not in held]
        if doomed and not dry_run and not scan.entries and not scan.branches:
            raise StateError(
                f"the ledger in {first.store.describe()} is empty, but {first.physical_schema} holds "
                f"{len(present)} relation(s): gc would drop every rollback target",
                hint="check --state-path / state.path in releasekit.yml; `releasekit gc --dry-run` "
                "lists what would go",
            )
        if not dry_run:
            warehouse.drop_relations(first.physical_schema, doomed)
    return GcResult(first.physical_schema, tuple(doomed), len(present) - len(doomed), dry_run, held)


def _claimed(run: RunContext) -> set[str]:
    """Relations live runs claim in the run's physical schema (a dead run's claim is
    nothing: what it built but never recorded is as unused as any other)."""
    return {
        relation
        for claim in run.store.claims()
        if claim.live and claim.physical_schema == run.physical_schema
        for relation in (*claim.builds, *claim.uses)
    }


def _building(name: str, claimed: set[str]) -> bool:
    """dbt's temporary and backup relations for a relation a live run builds
    (`<relation>__dbt_tmp`...): its build is using them now."""
    return is_dbt_leftover(name) and any(name.startswith(f"{relation}__dbt_") for relation in claimed)


def _recorded(scan: LedgerScan, declared: set[str]) -> set[str]:
    """Environments the ledger knows but the config no longer declares keep their
    retained releases too: deleting an environment file must not drop what it serves.
    A torn-down branch environment keeps nothing."""
    keep: set[str] = set()
    for env, entries in [*scan.entries.items(), *scan.branches.items()]:
        if env not in declared and entries and not ledger.torn_down(entries):
            keep |= _retained(entries, DEFAULT_RETENTION)
    return keep


def _retained(entries: list[LedgerEntry], retention: int) -> set[str]:
    keep_ids = ledger.retained_release_ids(entries, retention)
    return {
        version.relation
        for entry in entries
        if entry.release_id in keep_ids and entry.outcome in ("switching", "succeeded")
        for version in entry.models.values()
    }
