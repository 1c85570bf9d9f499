"""`releasekit doctor`: whether releasekit can work on a project's state store. The config
loads, the store is reachable, it honours conditional writes and deletes (the access
probes), every document in it reads, and which locks are held or left behind.

Doctor writes one probe object of its own, beside the state (never a state document), to
see conditional writes work, and removes it; it only reads everything else.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from releasekit.config.model import ProjectConfig
from releasekit.errors import ReleasekitError, StateError
from releasekit.state.base import StateStore
from releasekit.state.documents import (
    DOCUMENT_HINT,
    Documents,
    HeldLock,
    check_document,
    location_of,
    lock_scan,
    lock_words,
    read_documents,
    sequence_problems,
)
from releasekit.state.local import LocalStore
from releasekit.state.objects import ObjectStore
from releasekit.state.open import open_store
from releasekit.state.remote import ObjectStateStore

_PLURALS = {
    "ledger entry": "ledger entries",
    "check record": "check records",
    "registry record": "registry records",
    "artifact": "artifacts",
    "other": "other objects (not read by releasekit)",
}
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


@dataclass(frozen=True)
class DoctorReport:
    where: str  # the state's folder or URL; empty when the config did not load
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def only_findings(self) -> bool:
        """Every failed check is a finding: releasekit can work, something drifted."""
        return all(check.passed or check.finding for check in self.checks)


# --- diagnose -----------------------------------------------------------------------------


def diagnose(load_config: Callable[[], ProjectConfig]) -> DoctorReport:
    """Every check in order; a check the next ones depend on stops them when it fails."""
    try:
        config = load_config()
    except ReleasekitError as exc:
        return DoctorReport("", (_failed("config", exc),))
    loaded = Check("config", True, f"releasekit.yml loads ({len(config.environments)} environments)")
    try:
        store = open_store(config.state, config.state_path)
        keys = store.object_keys()
    except (StateError, OSError) as exc:
        where = config.state.url or str(config.state_path)
        return DoctorReport(where, (loaded, _failed("state store", exc, where)))
    listed = Check("state store", True, f"{store.describe()}: reachable, {len(keys)} documents listed")
    checks = [loaded, listed, *probe(store)]
    if checks[-1].passed:
        checks += store_checks(store)
    return DoctorReport(store.describe(), tuple(checks))


def store_checks(store: StateStore) -> list[Check]:
    """Every document reads; the locks held or left behind."""
    try:
        locks, lease_problems = lock_scan(store)
        documents = documents_check(store, lease_problems)
    except (StateError, OSError) as exc:
        return [_failed("documents", exc, store.describe())]
    return [documents, _locks_check(locks)]


def _failed(name: str, exc: Exception, where: str = "") -> Check:
    if isinstance(exc, ReleasekitError):
        return Check(name, False, exc.message, exc.hint or "")
    text = f"{where}: {exc}" if where else str(exc)
    return Check(name, False, text, "check that it exists and that releasekit may read and write it")


def _locks_check(locks: Sequence[HeldLock]) -> Check:
    if not locks:
        return Check("locks", True, "none held")
    items = tuple(f"{lock.state}: {lock_words(lock)}" for lock in locks)
    return Check("locks", True, f"{len(locks)} lock record(s)", items=items)


def documents_check(store: Documents, lease_problems: Sequence[str] = ()) -> Check:
    keys = store.object_keys()
    problems = [*sequence_problems(store, keys), *lease_problems]
    # Artifacts are opaque bytes to the stores (graphs of megabytes): counted, not downloaded.
    documents = [key for key in keys if not key.startswith("artifacts/")]
    kinds = Counter({"artifact": len(keys) - len(documents)})
    for key, data in zip(documents, read_documents(store, documents), strict=True):
        where = location_of(store, key)
        try:
            if data is None:
                raise StateError(f"{where}: vanished while being read")
            kinds[check_document(key, data, where=where)] += 1
        except StateError as exc:
            problems.append(exc.message)
    if problems:
        detail = f"{len(problems)} problem(s) among {len(keys)} documents; doctor changed none of them"
        return Check("documents", False, detail, DOCUMENT_HINT, tuple(problems))
    counts = ", ".join(f"{_PLURALS[kind]}: {count}" for kind, count in sorted(kinds.items()) if count)
    said = f"{len(keys)} documents" + (f" ({counts})" if counts else "")
    return Check("documents", True, f"{said}; every ledger entry, registry and check record parses")


# --- probes: can releasekit write safely here? ----------------------------------------------


def probe(store: StateStore) -> list[Check]:
    """Write, refuse, replace, refuse and delete a probe object of doctor's own; a check that
    fails stops the ones after it, and the probe is removed whatever happened."""
    if isinstance(store, ObjectStateStore):
        return _until_failed(_probe_objects(store.objects))
    if isinstance(store, LocalStore):
        return _until_failed(_probe_folder(store.root))
    # Doctor cannot vouch for a store it cannot probe: not probed is not passed.
    return [
        Check(
            "probe",
            False,
            f"{store.describe()}: not probed, doctor has no access probe for this kind of store",
            "keep the state in a local folder (state.path) or an S3 bucket (state.url)",
        )
    ]


def _until_failed(checks: Generator[Check, None, None]) -> list[Check]:
    done: list[Check] = []
    try:
        for check in checks:
            done.append(check)
            if not check.passed:
                break
    except (StateError, OSError) as exc:
        done.append(_failed("probe", exc))
    finally:
        checks.close()  # runs the generator's cleanup: the probe goes
    return done


def _probe_objects(objects: ObjectStore) -> Generator[Check, None, None]:
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


def _probe_folder(root: Path) -> Generator[Check, None, None]:
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
