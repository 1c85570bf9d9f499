"""Copy a state from one store to another (a folder to a bucket, or back), verified.

Every document (`StateObjects` keys: ledger, registry, check records, artifacts; never
locks, which belong to runs at the source) is created at the destination only where it
is missing, so nothing there is overwritten, and a rerun of an interrupted copy skips
what is already there with the same bytes and finishes it. Ledger and check folders are
copied in sequence order, so a copy cut short leaves each one a gap-free prefix. The
source is only read.

Refused before anything is copied: a source with a lock held (a run may be writing to
it), a destination holding a document with other bytes, a source document that does not
read. Afterwards every destination document is read back, compared by sha256 and parsed
with the codec for its area.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from releasekit.config.model import DEFAULT_LOCK_TTL_SECONDS, StateLocation
from releasekit.errors import ConfigError, NotFoundError, StateError
from releasekit.state.documents import (
    ENTRY_NAME,
    Documents,
    check_document,
    location_of,
    lock_scan,
    lock_words,
    read_documents,
)

_WRITERS = 8
_SHOWN = 10  # documents named in a refusal; the rest are counted


@dataclass(frozen=True)
class MigrationResult:
    source: str
    destination: str
    copied: tuple[str, ...]  # keys created at the destination, in copy order
    skipped: tuple[str, ...]  # already at the destination with the same bytes
    bytes_copied: int
    verified: int  # destination documents read back: same sha256, and parsed
    switch_line: str  # the releasekit.yml line that points a project at the destination


def migrate(source: Documents, destination: Documents, switch_line: str) -> MigrationResult:
    """Copy every state document of `source` missing at `destination`, then verify all."""
    if source.describe() == destination.describe():
        raise ConfigError(
            f"the destination {destination.describe()} is the state being migrated",
            hint="name another folder or bucket with --to",
        )
    _refuse_locks(source)
    keys = sorted(source.object_keys(), key=copy_order)
    if not keys:
        raise NotFoundError(
            f"{source.describe()} holds no state documents: nothing to migrate",
            hint="check --from (default: the configured state), or deploy something first",
        )
    data = _read_source(source, keys)
    todo = _missing_at(destination, keys, data)
    copied = _copy(destination, todo, data)
    done = set(copied)
    skipped = tuple(key for key in keys if key not in done)
    _verify(destination, keys, data)
    _refuse_changed(source, keys)
    size = sum(len(data[key]) for key in copied)
    return MigrationResult(
        source.describe(), destination.describe(), copied, skipped, size, len(keys), switch_line
    )


def copy_order(key: str) -> tuple[str, int, str]:
    """Folders by name, entries within a folder by sequence number (not by name: a ledger
    past 99,999,999 entries has longer names)."""
    folder, _, name = key.rpartition("/")
    return (folder, int(name.removesuffix(".json")) if ENTRY_NAME.match(name) else 0, name)


def switch_line(where: str, location: StateLocation, root: Path) -> str:
    """The `state:` line of releasekit.yml that points at `where` with `location`'s settings."""
    if where.startswith("s3://"):
        ttl = location.lock_ttl_seconds
        settings = {
            "region": location.region,
            "endpoint_url": location.endpoint_url,
            "profile": location.profile,
            "lock_ttl_seconds": None if ttl == DEFAULT_LOCK_TTL_SECONDS else ttl,
        }
        extra = {key: value for key, value in settings.items() if value is not None}
        if not extra and yaml.safe_load(f"state: {where}") == {"state": where}:
            return f"state: {where}"
        value: dict[str, object] = {"url": where, **extra}
    else:
        folder = (root / where).resolve()
        value = {"path": folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)}
    flow = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=math.inf)
    return f"state: {flow.strip()}"


def _refuse_locks(source: Documents) -> None:
    locks, unreadable = lock_scan(source)
    held = [f"{lock.state}: {lock_words(lock)}" for lock in locks] + unreadable
    if held:
        raise StateError(
            f"refusing to migrate {source.describe()} while a lock is held there (a run may be "
            "writing to it); nothing was copied:\n    " + "\n    ".join(held),
            hint="wait for those runs to finish and migrate when none runs; a lock whose run died is "
            "cleared with `releasekit unlock ENV --id ID`",
        )


def _read_source(source: Documents, keys: Sequence[str]) -> dict[str, bytes]:
    """Every source document, each checked to read: a corrupt one is refused, not spread."""
    data: dict[str, bytes] = {}
    problems = []
    for key, found in zip(keys, read_documents(source, keys), strict=True):
        where = location_of(source, key)
        try:
            if found is None:
                raise StateError(f"{where}: vanished while being read")
            check_document(key, found, where=where)
            data[key] = found
        except StateError as exc:
            problems.append(exc.message)
    if problems:
        raise StateError(
            f"{len(problems)} source document(s) do not read; nothing was copied:\n    "
            + "\n    ".join(_shown(problems)),
            hint="`releasekit doctor` names every one; restore them from a backup, or move them aside",
        )
    return data


def _missing_at(destination: Documents, keys: Sequence[str], data: dict[str, bytes]) -> list[str]:
    """The keys to copy; StateError (nothing copied) when any is there with other bytes."""
    existing = read_documents(destination, keys)
    conflicts = [
        location_of(destination, key)
        for key, there in zip(keys, existing, strict=True)
        if there is not None and there != data[key]
    ]
    if conflicts:
        raise StateError(
            f"{len(conflicts)} document(s) at the destination differ from the source; nothing was "
            "copied:\n    " + "\n    ".join(_shown(conflicts)),
            hint="the destination holds another state: migrate to an empty prefix or folder, or move "
            "those documents aside if they are leftovers",
        )
    return [key for key, there in zip(keys, existing, strict=True) if there is None]


def _copy(destination: Documents, keys: Sequence[str], data: dict[str, bytes]) -> tuple[str, ...]:
    """Create `keys`, folders in parallel, each folder in sequence order."""
    folders: dict[str, list[str]] = {}
    for key in keys:
        folders.setdefault(key.rpartition("/")[0], []).append(key)
    with ThreadPoolExecutor(max(1, min(_WRITERS, len(folders)))) as pool:
        done = list(pool.map(lambda group: _copy_folder(destination, group, data), folders.values()))
    created = {key for group in done for key in group}
    return tuple(key for key in keys if key in created)


def _copy_folder(destination: Documents, keys: Sequence[str], data: dict[str, bytes]) -> list[str]:
    created = []
    for key in keys:
        if destination.create_object(key, data[key]):
            created.append(key)
        elif destination.read_object(key) != data[key]:  # another writer got there first
            raise StateError(
                f"{location_of(destination, key)} was written by someone else during the copy, "
                "with other bytes",
                hint="something else writes to the destination: stop it, then rerun the migrate",
            )
    return created


def _verify(destination: Documents, keys: Sequence[str], data: dict[str, bytes]) -> None:
    problems = []
    for key, there in zip(keys, read_documents(destination, keys), strict=True):
        where = location_of(destination, key)
        if there is None:
            problems.append(f"{where}: missing after the copy")
        elif hashlib.sha256(there).digest() != hashlib.sha256(data[key]).digest():
            problems.append(f"{where}: reads back with other bytes (sha256 differs)")
        else:
            try:
                check_document(key, there, where=where)
            except StateError as exc:
                problems.append(exc.message)
    if problems:
        raise StateError(
            "the copy does not verify:\n    " + "\n    ".join(_shown(problems)),
            hint="rerun the migrate (it skips what verified); if it persists, the destination does not "
            "keep what it is given",
        )


def _refuse_changed(source: Documents, keys: Sequence[str]) -> None:
    """A run that wrote to the source meanwhile made documents this copy does not hold."""
    new = sorted(set(source.object_keys()) - set(keys))
    if new:
        raise StateError(
            f"the source changed during the copy: {len(new)} new document(s):\n    "
            + "\n    ".join(_shown(new)),
            hint="rerun the migrate when no releasekit run is going on: it copies only what is missing",
        )


def _shown(items: Sequence[str]) -> list[str]:
    more = len(items) - _SHOWN
    return list(items[:_SHOWN]) + ([f"... and {more} more"] if more > 0 else [])
