"""`releasekit doctor`: whether releasekit can work on a project's state store. The config
loads, the store is reachable, it honours conditional writes and deletes (the access
probes), every document in it reads, and which locks are held or left behind.

Doctor writes one probe object of its own, beside the state (never a state document), to
see conditional writes work, and removes it; it only reads everything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

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
from releasekit.state.open import open_store
from releasekit.state.probes import Check

__all__ = ["Check", "DoctorReport", "diagnose", "documents_check", "probe", "store_checks"]

_PLURALS = {
    "ledger entry": "ledger entries",
    "check record": "check records",
    "metric record": "metric records",
    "registry record": "registry records",
    "artifact": "artifacts",
    "other": "other objects (not read by releasekit)",
}


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
    """The store's own access probes (each kind of store knows what to try); a check that
    fails stops the ones after it, and the probe is removed whatever happened."""
    return _until_failed(store.probe())


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
