"""What `releasekit doctor` tries on a store to see that releasekit can keep its state safe
there: each kind of store has its own probe, run by the store itself."""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from releasekit.errors import StateError
from releasekit.state.objects import ObjectStore

CONDITIONAL_HINT = (
    "use a store that honours conditional writes (If-None-Match and If-Match on PutObject): "
    "AWS S3 does; check your S3-compatible store's documentation"
)


@dataclass(frozen=True)
class Check:
    """One thing doctor tried, and how it went; `items` name the objects or locks meant."""

    name: str
    passed: bool
    detail: str
    hint: str = ""
    items: tuple[str, ...] = ()
    # A failure that is a finding about what releasekit manages (a warehouse that drifted
    # from its release: exit 1), not one that keeps releasekit from working (exit 2).
    finding: bool = False


def probe_objects(objects: ObjectStore) -> Generator[Check, None, None]:
    key = f"doctor/probe-{secrets.token_hex(6)}.json"
    where = objects.describe(key)
    try:
        first = objects.create(key, b'{"probe": 1}\n')
        if first is None:
            yield Check("conditional create", False, f"{where}: the probe already exists", "rerun doctor")
            return
        refused = objects.create(key, b'{"probe": 2}\n') is None
        kept = refused and _data(objects, key) == b'{"probe": 1}\n'
        yield _conditional("conditional create", kept, f"{where}: a second create (If-None-Match: *)")
        second = objects.replace(key, b'{"probe": 3}\n', first)
        if second is None:
            yield Check(
                "compare-and-swap",
                False,
                f"{where}: a replace with the current ETag was refused",
                CONDITIONAL_HINT,
            )
            return
        stale = objects.replace(key, b'{"probe": 4}\n', first) is None
        kept = stale and _data(objects, key) == b'{"probe": 3}\n'
        yield _conditional("compare-and-swap", kept, f"{where}: a replace with a stale ETag (If-Match)")
        removed = objects.delete(key, second) and not objects.exists(key)
        yield Check(
            "delete", removed, f"{where}: probe removed" if removed else f"{where}: the probe is still there"
        )
    finally:
        with suppress(StateError):
            objects.delete(key)


def _conditional(name: str, refused: bool, what: str) -> Check:
    if refused:
        return Check(name, True, f"{what} was refused")
    return Check(
        name,
        False,
        f"{what} was accepted: this store does not honour conditional writes, so releasekit "
        "cannot keep the ledger safe on it",
        CONDITIONAL_HINT,
    )


def _data(objects: ObjectStore, key: str) -> bytes | None:
    stored = objects.get(key)
    return None if stored is None else stored.data


def probe_folder(root: Path) -> Generator[Check, None, None]:
    """The folder's equivalents: `link` refuses an existing name (how entries are created),
    a file lock keeps a second holder out (how runs exclude each other), unlink."""
    made = _missing_folders(root)
    probe_path = root / f"doctor-probe-{os.getpid()}-{secrets.token_hex(6)}"
    temp = probe_path.with_name(probe_path.name + ".tmp")
    lock_path = probe_path.with_name(probe_path.name + ".lock")
    try:
        root.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"probe\n")
        yield _linked(temp, probe_path)
        yield _excluded(lock_path)
        for path in (temp, lock_path, probe_path):
            path.unlink(missing_ok=True)
        removed = not probe_path.exists()
        yield Check(
            "delete", removed, f"{probe_path}: probe removed" if removed else f"{probe_path}: still there"
        )
    finally:
        for path in (temp, lock_path, probe_path):
            with suppress(OSError):
                path.unlink(missing_ok=True)
        for folder in reversed(made):  # folders doctor made for its probe; rmdir keeps any in use
            with suppress(OSError):
                folder.rmdir()


def _linked(temp: Path, final: Path) -> Check:
    name = "conditional create"
    try:
        os.link(temp, final)
    except OSError as exc:
        return Check(
            name,
            False,
            f"{final}: could not create a hard link: {exc.strerror}",
            "the state folder needs a local file system with hard links",
        )
    try:
        os.link(temp, final)
    except FileExistsError:
        return Check(name, True, f"{final}: a second create of the probe was refused")
    return Check(
        name,
        False,
        f"{final}: a second create replaced the probe: this file system does not "
        "refuse existing names, so releasekit cannot keep the ledger safe on it",
        "put the state on a local file system",
    )


def _excluded(path: Path) -> Check:
    name = "file lock"
    first, second = FileLock(path, timeout=0), FileLock(path, timeout=0)
    with first:
        try:
            second.acquire()
        except Timeout:
            return Check(name, True, f"{path}: a second holder of a file lock was refused")
        second.release()
    return Check(
        name,
        False,
        f"{path}: two holders got one file lock: this file system does not honour "
        "file locks, so two runs could deploy one environment at once",
        "put the state on a local file system (not a network share)",
    )


def _missing_folders(root: Path) -> list[Path]:
    missing = []
    for folder in (root, *root.parents):
        if folder.exists():
            break
        missing.append(folder)
    return list(reversed(missing))
