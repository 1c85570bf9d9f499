"""gc: drop physical relations no retained release or live environment uses, and the
temp/backup relations interrupted dbt runs leave behind."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from releasekit.engine.runtime import Target
from releasekit.state import ledger
from releasekit.warehouse.naming import is_dbt_leftover


@dataclass(frozen=True)
class GcResult:
    physical_schema: str
    dropped: tuple[str, ...]
    kept: int
    dry_run: bool


def collect_garbage(targets: Sequence[Target], *, dry_run: bool = False) -> list[GcResult]:
    """Targets that share a warehouse share its physical schema: keep what any of them
    retains. Every environment's lock is held so no deploy builds while gc drops."""
    by_warehouse: dict[tuple[str, str], list[Target]] = {}
    for target in targets:
        key = (repr(sorted(target.connection.settings.items())), target.physical_schema)
        by_warehouse.setdefault(key, []).append(target)
    with ExitStack() as stack:
        for target in sorted(targets, key=lambda t: t.name):
            stack.enter_context(target.store.lock(target.name, owner=target.who))
        return [_collect(group, dry_run) for group in by_warehouse.values()]


def _collect(targets: list[Target], dry_run: bool) -> GcResult:
    first = targets[0]
    with first.warehouse() as warehouse:
        keep = set()
        for target in targets:
            keep |= _retained(target)
            keep |= set(warehouse.view_targets(target.env.schema).values())
        present = warehouse.relations(first.physical_schema)
        doomed = sorted(name for name in present if name not in keep or is_dbt_leftover(name))
        if not dry_run:
            warehouse.drop_relations(first.physical_schema, doomed)
    return GcResult(first.physical_schema, tuple(doomed), len(present) - len(doomed), dry_run)


def _retained(target: Target) -> set[str]:
    entries = target.store.entries(target.name)
    keep_ids = ledger.retained_release_ids(entries, target.env.retention)
    return {
        version.relation
        for entry in entries
        if entry.release_id in keep_ids and entry.outcome in ("switching", "succeeded")
        for version in entry.models.values()
    }
