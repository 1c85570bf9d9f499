"""A state store's documents as releasekit reads them: each parsed with the codec for its
area, read in parallel, the gaps in its append-only folders, and the lock records held or
left behind. What `releasekit doctor`, `state migrate` and `state show` all ask of a store;
nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from releasekit.errors import StateError
from releasekit.state.base import HeldLock, StateObjects
from releasekit.state.codec import (
    branch_from_bytes,
    check_from_bytes,
    env_key,
    ledger_folder_env_key,
    loads,
)
from releasekit.state.metric_codec import metric_from_bytes
from releasekit.state.store import ENTRY_NAME, missing_seqs

__all__ = [
    "DOCUMENT_HINT",
    "ENTRY_NAME",
    "Documents",
    "HeldLock",
    "check_document",
    "location_of",
    "lock_scan",
    "lock_words",
    "read_documents",
    "sequence_problems",
]

_SEQUENCES = ("ledger", "checks", "contents", "metrics")  # append-only folders of numbered entries
_READERS = 16
DOCUMENT_HINT = (
    "restore each from a backup or move it aside (releasekit never overwrites one); a document "
    "a newer releasekit wrote needs that releasekit: upgrade"
)


class Documents(StateObjects, Protocol):
    """A store's documents as bytes, and where it is: what migrate and the scans need."""

    def describe(self) -> str: ...

    def lock_records(self) -> tuple[list[HeldLock], list[str]]: ...


# --- documents ----------------------------------------------------------------------------


def read_documents(store: Documents, keys: Sequence[str]) -> list[bytes | None]:
    """The documents under `keys`, read in parallel (a bucket answers each in milliseconds)."""
    if len(keys) <= 1:
        return [store.read_object(key) for key in keys]
    with ThreadPoolExecutor(min(_READERS, len(keys))) as pool:
        return list(pool.map(store.read_object, keys))


def location_of(store: Documents, key: str) -> str:
    return f"{store.describe()}/{key}"


def check_document(key: str, data: bytes, *, where: str) -> str:
    """Parse a document with the codec for its area; what it is. StateError naming `where`
    when it does not read, or is not what its key says."""
    area, _, rest = key.partition("/")
    folder, _, name = rest.rpartition("/")
    if area in _SEQUENCES and folder and ENTRY_NAME.match(name):
        owner: str | None
        if area == "ledger":
            entry = loads(data, where=where)
            owner, seq = entry.env, entry.seq
            folder = ledger_folder_env_key(folder)[0]  # a branch environment's: branch~<key>
        elif area == "metrics":
            metrics = metric_from_bytes(data, where=where)
            owner, seq = metrics.env, metrics.seq
        else:
            record = check_from_bytes(data, where=where)
            owner, seq = (record.git_sha if area == "checks" else record.content), record.seq
        if owner is None or env_key(owner) != folder or f"{seq:08d}.json" != name:
            raise StateError(
                f"{where}: holds entry {seq} of {owner!r}, not what its key says", hint=DOCUMENT_HINT
            )
        return {"ledger": "ledger entry", "metrics": "metric record"}.get(area, "check record")
    if area == "registry" and not folder and name.endswith(".json"):
        record_ = branch_from_bytes(data, where=where)
        if f"{env_key(record_.branch)}.json" != name:
            raise StateError(f"{where}: holds the record of {record_.branch!r}", hint=DOCUMENT_HINT)
        return "registry record"
    return "artifact" if area == "artifacts" else "other"


def sequence_problems(store: Documents, keys: Sequence[str]) -> list[str]:
    """Append-only folders (ledger, checks) must hold entries 1..n: a gap loses history."""
    folders: dict[str, list[int]] = {}
    for key in keys:
        folder, _, name = key.rpartition("/")
        if folder.count("/") == 1 and folder.split("/")[0] in _SEQUENCES and ENTRY_NAME.match(name):
            folders.setdefault(folder, []).append(int(name.removesuffix(".json")))
    problems = []
    for folder, seqs in sorted(folders.items()):
        missing = missing_seqs(seqs)
        if missing:
            problems.append(
                f"{location_of(store, folder)}: entry {missing[0]:08d}.json is missing "
                f"({len(missing)} missing before {max(seqs):08d}.json)"
            )
    return problems


# --- locks --------------------------------------------------------------------------------


def lock_scan(store: Documents) -> tuple[list[HeldLock], list[str]]:
    """The lock records in the store, and the ones that do not read (named)."""
    return store.lock_records()


def lock_words(lock: HeldLock) -> str:
    info = lock.info
    return (
        f"{info.env} by {info.owner} (pid {info.pid} on {info.host}) since {info.since}, "
        f"lock id {info.id}; {lock.detail}"
    )
