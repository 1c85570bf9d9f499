"""A state store's documents as releasekit reads them: each parsed with the codec for its
area, read in parallel, the gaps in its append-only folders, and the lock records held or
left behind. What `releasekit doctor`, `state migrate` and `state show` all ask of a store;
nothing here writes.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from releasekit.errors import StateError
from releasekit.state.base import LockInfo, StateObjects
from releasekit.state.codec import (
    branch_from_document,
    check_from_bytes,
    env_key,
    holder_from_document,
    ledger_folder_env_key,
    loads,
)
from releasekit.state.local import LocalStore
from releasekit.state.locking import process_alive
from releasekit.state.objects import ObjectStore
from releasekit.state.remote import ObjectStateStore, parse_lease

_SEQUENCES = ("ledger", "checks", "contents")  # append-only folders of numbered entries
ENTRY_NAME = re.compile(r"^[0-9]{8,}\.json$")  # a ledger entry's or check record's file name
_READERS = 16
DOCUMENT_HINT = (
    "restore each from a backup or move it aside (releasekit never overwrites one); a document "
    "a newer releasekit wrote needs that releasekit: upgrade"
)


class Documents(StateObjects, Protocol):
    """A store's documents as bytes, and where it is: what migrate and the scans need."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class HeldLock:
    """A lock record in the store: `held` by a run, or `left behind` (its holder is gone or
    its lease expired; the next run takes it over, `releasekit unlock` clears it now)."""

    info: LockInfo
    where: str
    state: Literal["held", "left behind"]
    detail: str


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
        else:
            record = check_from_bytes(data, where=where)
            owner, seq = (record.git_sha if area == "checks" else record.content), record.seq
        if owner is None or env_key(owner) != folder or f"{seq:08d}.json" != name:
            raise StateError(
                f"{where}: holds entry {seq} of {owner!r}, not what its key says", hint=DOCUMENT_HINT
            )
        return "ledger entry" if area == "ledger" else "check record"
    if area == "registry" and not folder and name.endswith(".json"):
        record_ = branch_from_document(_json_object(data, where, "registry record"), where=where)
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
        missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
        if missing:
            problems.append(
                f"{location_of(store, folder)}: entry {missing[0]:08d}.json is missing "
                f"({len(missing)} missing before {max(seqs):08d}.json)"
            )
    return problems


def _json_object(data: bytes, where: str, what: str) -> dict[str, object]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"{where}: unreadable {what}: {exc}", hint=DOCUMENT_HINT) from None
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a releasekit {what}", hint=DOCUMENT_HINT)
    return document


# --- locks --------------------------------------------------------------------------------


def lock_scan(store: Documents) -> tuple[list[HeldLock], list[str]]:
    """The lock records in the store, and the ones that do not read (named)."""
    if isinstance(store, ObjectStateStore):
        return _leases(store.objects)
    if isinstance(store, LocalStore):
        return _holder_files(store.root / "locks")
    return [HeldLock(info, store.describe(), "held", "") for info in store.lock_holders()], []


def _leases(objects: ObjectStore) -> tuple[list[HeldLock], list[str]]:
    found: list[HeldLock] = []
    problems: list[str] = []
    for key in objects.keys("locks/"):
        stored, where = objects.get(key), objects.describe(key)
        if stored is None:
            continue  # released while we looked
        try:
            info, ttl = parse_lease(stored.data, where=where)
        except StateError as exc:
            problems.append(exc.message)
            continue
        age = (objects.now() - stored.modified).total_seconds()
        expired = age > ttl
        state: Literal["held", "left behind"] = "left behind" if expired else "held"
        detail = f"lease renewed {age:.0f} s ago, expires after {ttl:g} s" + (
            f" (expired: clear it with releasekit unlock {info.env} --id {info.id})" if expired else ""
        )
        found.append(HeldLock(info, where, state, detail))
    return found, problems


def _holder_files(folder: Path) -> tuple[list[HeldLock], list[str]]:
    found: list[HeldLock] = []
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.glob("*.holder.json")):
        try:
            info = holder_from_document(
                _json_object(path.read_bytes(), str(path), "lock holder"), where=str(path)
            )
        except FileNotFoundError:
            continue  # released while we looked
        except (StateError, OSError) as exc:
            problems.append(exc.message if isinstance(exc, StateError) else f"{path}: {exc}")
            continue
        if _process_alive(info):
            found.append(HeldLock(info, str(path), "held", "its process is running"))
        else:
            gone = f"its process is gone: clear it with releasekit unlock {info.env} --id {info.id}"
            found.append(HeldLock(info, str(path), "left behind", gone))
    return found, problems


def _process_alive(info: LockInfo) -> bool:
    """On this host its process says; a holder on another host (a shared folder) counts as
    running, since nothing here can tell."""
    return info.host != socket.gethostname() or process_alive(info.pid)


def lock_words(lock: HeldLock) -> str:
    info = lock.info
    return (
        f"{info.env} by {info.owner} (pid {info.pid} on {info.host}) since {info.since}, "
        f"lock id {info.id}; {lock.detail}"
    )
