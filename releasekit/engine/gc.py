"""gc: drop physical relations no retained release or live environment uses, and the
temp/backup relations interrupted dbt runs leave behind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from releasekit.config.model import DEFAULT_RETENTION
from releasekit.engine.runtime import Target
from releasekit.errors import StateError
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry
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
        keep = _recorded(first, {t.name for t in targets})
        for target in targets:
            keep |= _retained(target.store.entries(target.name), target.env.retention)
            keep |= set(warehouse.view_targets(target.env.schema).values())
        present = warehouse.relations(first.physical_schema)
        doomed = sorted(name for name in present if name not in keep or is_dbt_leftover(name))
        held = {
            name: tuple(found) for name, found in warehouse.readers(first.physical_schema, doomed).items()
        }
        doomed = [name for name in doomed if name not in held]
        if doomed and not dry_run and not first.store.environments():
            raise StateError(
                f"the ledger in {first.store.describe()} is empty, but {first.physical_schema} holds "
                f"{len(present)} relation(s): gc would drop every rollback target",
                hint="check --state-path / state.path in releasekit.yml; `releasekit gc --dry-run` "
                "lists what would go",
            )
        if not dry_run:
            warehouse.drop_relations(first.physical_schema, doomed)
    return GcResult(first.physical_schema, tuple(doomed), len(present) - len(doomed), dry_run, held)


def _recorded(target: Target, declared: set[str]) -> set[str]:
    """Environments the ledger knows but the config no longer declares keep their
    retained releases too: deleting an environment file must not drop what it serves.
    A torn-down branch environment keeps nothing."""
    keep: set[str] = set()
    for env in target.store.environments():
        entries = target.store.entries(env)
        if env not in declared and not ledger.torn_down(entries):
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
