"""The state store over a shared object store (S3): what many CI runners and people use
at once, so every write is conditional and every lock is a lease.

Layout under the store's prefix, the same names as the local folder's:

    ledger/<env-key>/00000001.json   one immutable document per entry (create-only)
    ledger/branch~<env-key>/...      a branch environment's (one an older releasekit wrote at
                                     ledger/<env-key>/ is found there, and stays there)
    registry/<env-key>.json          a branch environment's record (compare-and-swap)
    checks/<sha-key>/00000001.json   one immutable document per check (create-only)
    contents/<tree-key>/00000001.json  the same records by the content they verified
    artifacts/<name-key>             files releases leave for later runs (create-only)
    locks/<env-key>.json             an environment's lease: holder, heartbeat, expiry, and
                                     the relations its run claims (`claim`)
    locks/~planning.json             the lease held while a deploy plans and claims, or gc decides

Appends create the next sequence number with If-None-Match: a writer that loses the race
tries the number after it at once, so entries are never lost, duplicated or overwritten,
and no writer starves. A lock is an object created the same way; its holder renews it
(compare-and-swap on the ETag) every quarter of its time to live from a background
thread. A lock whose last renewal is older than its time to live, by the store's own
clock, may be taken over. A holder checks its lease before each write it makes to its
environment's ledger or registry, so a holder that lost it (expired, taken over, cleared)
stops before it records a switch, which comes before the warehouse changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from releasekit.errors import LockLostError, StateError
from releasekit.state.base import (
    DEFAULT_LOCK_TIMEOUT,
    PLANNING_LOCK,
    PLANNING_TIMEOUT,
    STATE_AREAS,
    BranchEnvironment,
    CheckRecord,
    Claim,
    LedgerEntry,
    LedgerScan,
    LockInfo,
    UnreadableLedger,
)
from releasekit.state.codec import (
    BRANCH_LEDGER_PREFIX,
    KEEP_HINT,
    branch_from_document,
    branch_to_document,
    check_from_bytes,
    check_to_bytes,
    claim_from_document,
    claim_to_document,
    dumps,
    env_from_key,
    env_key,
    holder_from_document,
    holder_to_document,
    ledger_folder_env_key,
    legacy_branch_ledger_error,
    loads,
)
from releasekit.state.ledger import made_by_branch
from releasekit.state.locking import (
    live_holder_error,
    locked_error,
    mismatch_error,
    not_locked_error,
    process_alive,
)
from releasekit.state.objects import ObjectStore, Stored

DEFAULT_LOCK_TTL = 60.0  # seconds a lease lives without renewal; renewed every quarter of it
LEASE_FORMAT = "releasekit.lease/1"
WRITE_BUDGET = 60.0  # seconds a write keeps retrying lost races before it gives up
# S3's Last-Modified and Date have whole seconds, so a lease's age read from them can come
# out up to a second more than it is: expiry and liveness wait that second out, or a lease
# renewed 0.3 s ago could look a second old and be taken over before its time to live.
CLOCK_SLACK = 1.0
_ENTRY_NAME = re.compile(r"^[0-9]{8,}\.json$")
_READERS = 16


@dataclass
class _Hold:
    """A lease this process holds; the heartbeat thread and the writers share it."""

    info: LockInfo
    key: str
    etag: str
    ttl: float
    renewed: float  # time.monotonic() of the last renewal the store accepted
    lost: str = ""  # why the lease is no longer ours; empty while it is
    claim: dict[str, Any] | None = None  # what its run claims; renewals carry it
    guard: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class ObjectStateStore:
    """`StateStore` over an `ObjectStore`. Safe across threads, processes and machines."""

    def __init__(self, objects: ObjectStore, *, lock_ttl: float = DEFAULT_LOCK_TTL) -> None:
        if lock_ttl <= 0:
            raise StateError(f"a lock's time to live must be positive, not {lock_ttl}")
        self.objects = objects
        self.lock_ttl = lock_ttl
        self._documents: dict[str, bytes] = {}  # immutable documents already read, by key
        self._held: dict[str, _Hold] = {}  # env -> the lease this process holds on it
        self._counts: dict[str, int] = {}  # ledger folder -> its entries, while its env is held
        self._folders: dict[str, str] = {}  # env -> its ledger folder, while held

    def describe(self) -> str:
        return self.objects.describe()

    # --- the ledger ----------------------------------------------------------------------

    def environments(self) -> list[str]:
        return sorted(self._ledgers(first_only=True))

    def entries(self, env: str) -> list[LedgerEntry]:
        folder = self._ledger_folder(env)
        known = self._counts.get(folder) if env in self._held else None
        seqs = list(range(1, known + 1)) if known is not None else self._seqs(folder)
        if env in self._held:
            self._counts[folder] = len(seqs)  # nobody else appends while this process holds it
        return self._parse(folder, seqs, env)

    def all_entries(self) -> dict[str, list[LedgerEntry]]:
        return self._ledgers(first_only=False)

    def append(self, entry: LedgerEntry) -> LedgerEntry:
        self._fence(entry.env)
        folder = self._ledger_folder(entry.env)
        known = self._counts.get(folder) if entry.env in self._held else None
        start = 0 if known is None else known + 1  # 0: list the folder to find the number
        seq = self._append(folder, lambda seq: dumps(replace(entry, seq=seq)), start=start)
        if entry.env in self._held:
            self._counts[folder] = seq
        return replace(entry, seq=seq)

    def scan_ledgers(self) -> LedgerScan:
        declared, branches, problems = self._scan(first_only=False)
        unreadable = tuple(
            UnreadableLedger(
                env_from_key(ledger_folder_env_key(folder.split("/")[1])[0]),
                self.objects.describe(folder),
                exc.message,
            )
            for folder, exc in problems
        )
        return LedgerScan(declared, unreadable, branches)

    def _ledgers(self, *, first_only: bool) -> dict[str, list[LedgerEntry]]:
        declared, branches, problems = self._scan(first_only=first_only)
        if problems:
            raise problems[0][1]
        return {**branches, **declared}

    def _ledger_folder(self, env: str) -> str:
        """`ledger/branch~<key>/` for a branch environment (it has a registry record), else
        `ledger/<key>/`. A branch ledger an older releasekit wrote at `ledger/<key>/` stays
        there and is found; a declared environment never reads one as its own."""
        if env in self._held and env in self._folders:
            return self._folders[env]  # only this process registers or forgets it meanwhile
        folder = self._find_ledger_folder(env)
        if env in self._held:
            self._folders[env] = folder
        return folder

    def _find_ledger_folder(self, env: str) -> str:
        declared = f"ledger/{env_key(env)}/"
        branch = f"ledger/{BRANCH_LEDGER_PREFIX}{env_key(env)}/"
        # The registry record and the declared folder's first entry, in one round trip.
        registry, first = f"registry/{env_key(env)}.json", declared + _entry_name(1)
        keys = [registry] if first in self._documents else [registry, first]
        found = self._reads(keys)
        if len(found) > 1 and found[1] is not None:
            self._documents[first] = found[1].data  # immutable once written
        legacy = first in self._documents and made_by_branch(
            [loads(self._documents[first], where=self.objects.describe(first))]
        )
        if found[0] is None:
            if legacy:
                raise legacy_branch_ledger_error(
                    self.objects.describe(declared), env, self.objects.describe(branch)
                )
            return declared
        _branch(found[0], self.objects.describe(registry))  # a record that does not read is named
        return declared if legacy and not self.objects.keys(branch) else branch

    def _scan(
        self, *, first_only: bool
    ) -> tuple[dict[str, list[LedgerEntry]], dict[str, list[LedgerEntry]], list[tuple[str, StateError]]]:
        """Every environment's ledger (or only its first entry) from one listing of the
        store and one parallel read of the documents this process has not read before;
        the folders that do not read, each with its error."""
        by_folder: dict[str, list[str]] = {}
        for key in self.objects.keys("ledger/"):
            parts = key.split("/")
            if len(parts) == 3:
                by_folder.setdefault(f"ledger/{parts[1]}/", []).append(key)
        wanted: dict[str, list[int]] = {}
        problems: list[tuple[str, StateError]] = []
        for folder, keys in sorted(by_folder.items()):
            try:
                seqs = _seqs_of(folder, keys, self.objects.describe)
            except StateError as exc:
                problems.append((folder, exc))
                continue
            if seqs:
                wanted[folder] = seqs[:1] if first_only else seqs
        with contextlib.suppress(StateError):  # a document gone meanwhile: named below
            self._immutables([folder + _entry_name(seq) for folder, seqs in wanted.items() for seq in seqs])
        declared: dict[str, list[LedgerEntry]] = {}
        branches: dict[str, list[LedgerEntry]] = {}
        for folder, seqs in sorted(wanted.items()):
            try:
                env, entries = self._folder_entries(folder, seqs)
            except StateError as exc:
                problems.append((folder, exc))
                continue
            # A branch's ledger an older releasekit wrote among declared ones is a branch's.
            in_branches = ledger_folder_env_key(folder.split("/")[1])[1] or made_by_branch(entries)
            (branches if in_branches else declared)[env] = entries
        return declared, branches, problems

    def _folder_entries(self, folder: str, seqs: list[int]) -> tuple[str, list[LedgerEntry]]:
        first_key = folder + _entry_name(1)
        first = loads(self._immutable(first_key), where=self.objects.describe(first_key))
        if env_key(first.env) != ledger_folder_env_key(folder.split("/")[1])[0]:
            where = self.objects.describe(folder)
            raise StateError(f"{where}: holds entries of {first.env!r}", hint=KEEP_HINT)
        return first.env, self._parse(folder, seqs, first.env)

    def _parse(self, folder: str, seqs: list[int], env: str) -> list[LedgerEntry]:
        keys = [folder + _entry_name(seq) for seq in seqs]
        found = []
        for seq, key, data in zip(seqs, keys, self._immutables(keys), strict=True):
            entry = loads(data, where=self.objects.describe(key))
            if entry.seq != seq or entry.env != env:
                raise StateError(
                    f"{self.objects.describe(key)}: holds entry {entry.seq} of environment {entry.env!r}, "
                    f"expected entry {seq} of {env!r}",
                    hint=KEEP_HINT,
                )
            found.append(entry)
        return found

    # --- check records -------------------------------------------------------------------

    def record_check(self, record: CheckRecord) -> CheckRecord:
        seq = self._append(
            f"checks/{env_key(record.git_sha)}/", lambda seq: check_to_bytes(replace(record, seq=seq))
        )
        if record.content is not None:  # after the commit's own: an index never names a lost record
            self._append(
                f"contents/{env_key(record.content)}/", lambda seq: check_to_bytes(replace(record, seq=seq))
            )
        return replace(record, seq=seq)

    def checks(self, git_sha: str) -> list[CheckRecord]:
        return self._read_checks(f"checks/{env_key(git_sha)}/")

    def checks_with_content(self, content: str) -> list[CheckRecord]:
        return self._read_checks(f"contents/{env_key(content)}/")

    def _read_checks(self, folder: str) -> list[CheckRecord]:
        keys = [folder + _entry_name(seq) for seq in self._seqs(folder)]
        return [
            check_from_bytes(data, where=self.objects.describe(key))
            for key, data in zip(keys, self._immutables(keys), strict=True)
        ]

    # --- artifacts -----------------------------------------------------------------------

    def put_artifact(self, name: str, data: bytes) -> None:
        self.objects.create(f"artifacts/{env_key(name)}", data)  # None: written before, same content

    def get_artifact(self, name: str) -> bytes | None:
        stored = self.objects.get(f"artifacts/{env_key(name)}")
        return None if stored is None else stored.data

    def has_artifact(self, name: str) -> bool:
        return self.objects.exists(f"artifacts/{env_key(name)}")

    # --- the registry of branch environments ---------------------------------------------

    def branches(self) -> list[BranchEnvironment]:
        keys = [key for key in self.objects.keys("registry/") if key.endswith(".json")]
        records = [
            _branch(stored, self.objects.describe(key))
            for key, stored in zip(keys, self._reads(keys), strict=True)
            if stored
        ]
        return sorted(records, key=lambda record: record.branch)

    def branch(self, name: str) -> BranchEnvironment | None:
        key = f"registry/{env_key(name)}.json"
        stored = self.objects.get(key)
        return None if stored is None else _branch(stored, self.objects.describe(key))

    def register(self, record: BranchEnvironment) -> None:
        self._fence(record.branch)
        self._folders.pop(record.branch, None)
        key = f"registry/{env_key(record.branch)}.json"
        data = _json_bytes(branch_to_document(record))
        for attempt in _attempts(f"register {record.branch!r} in {self.objects.describe(key)}"):
            current = self.objects.get(key)
            if current is not None and current.data == data:
                return
            if current is not None:
                _branch(current, self.objects.describe(key))  # never replace what does not read
            written = (
                self.objects.create(key, data)
                if current is None
                else self.objects.replace(key, data, current.etag)
            )
            if written is not None:
                return
            attempt.lost()

    def unregister(self, name: str) -> None:
        self._fence(name)
        self._folders.pop(name, None)
        key = f"registry/{env_key(name)}.json"
        for attempt in _attempts(f"forget {name!r} in {self.objects.describe(key)}"):
            current = self.objects.get(key)
            if current is None or self.objects.delete(key, current.etag):
                return
            attempt.lost()

    # --- locks: leases with a heartbeat --------------------------------------------------

    @contextmanager
    def lock(self, env: str, *, owner: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[LockInfo]:
        with self._holding(_lock_key(env), env, owner, timeout) as info:
            yield info

    def planning_lock(
        self, *, owner: str, timeout: float = PLANNING_TIMEOUT
    ) -> AbstractContextManager[LockInfo]:
        return self._holding(f"locks/{PLANNING_LOCK}.json", PLANNING_LOCK, owner, timeout)

    @contextmanager
    def _holding(self, key: str, env: str, owner: str, timeout: float) -> Iterator[LockInfo]:
        if env in self._held:
            raise locked_error(env, self._held[env].info, f"lock object {self.objects.describe(key)}")
        hold = self._acquire(key, env, owner, timeout)
        self._held[env] = hold
        beat = threading.Thread(
            target=self._heartbeat, args=(hold,), name=f"releasekit-lease-{env}", daemon=True
        )
        beat.start()
        try:
            yield hold.info
        except BaseException:
            # What failed in the body is the error to report: a store that also fails to
            # let go of the lease (it expires on its own) must not replace it.
            with contextlib.suppress(StateError):
                self._let_go(env, hold, beat)
            raise
        self._let_go(env, hold, beat)

    def claim(self, env: str, physical_schema: str, builds: Sequence[str], uses: Sequence[str]) -> None:
        """The claim rides on the lease: renewals carry it, letting go removes it, and a
        lease that expired (its holder gone) carries a claim that is no longer live."""
        self._fence(env)
        if env not in self._held:
            raise StateError(f"a claim on {env!r} needs its lock, and this process does not hold it")
        hold = self._held[env]
        with hold.guard:
            hold.claim = claim_to_document(physical_schema, builds, uses)
            etag = self.objects.replace(hold.key, self._lease_bytes(hold.info, hold.claim), hold.etag)
            if etag is not None:
                hold.etag, hold.renewed = etag, time.monotonic()
                return
        self._fence(env)  # it changed hands: LockLostError names who has it
        raise LockLostError(f"this run lost the lock of environment {env!r} while claiming what it builds")

    def claims(self) -> list[Claim]:
        keys = self.objects.keys("locks/")
        found = []
        for key, stored in zip(keys, self._reads(keys), strict=True):
            if stored is None:
                continue  # let go while we looked
            where = self.objects.describe(key)
            try:
                info, ttl = parse_lease(stored.data, where=where)
                document = json.loads(stored.data)
            except (StateError, ValueError):
                continue  # a lease that does not read carries no claim we could honour
            age = (self.objects.now() - stored.modified).total_seconds()
            claim = claim_from_document(document, info, age <= ttl + CLOCK_SLACK, where=where)
            if claim is not None:
                found.append(claim)
        return found

    def _let_go(self, env: str, hold: _Hold, beat: threading.Thread) -> None:
        hold.stop.set()
        beat.join()
        self._held.pop(env, None)
        self._counts.pop(self._folders.pop(env, f"ledger/{env_key(env)}/"), None)
        with hold.guard:
            if not hold.lost:
                self.objects.delete(hold.key, hold.etag)  # False: it changed hands; leave it

    def break_lock(self, env: str, lock_id: str) -> LockInfo:
        key = _lock_key(env)
        for attempt in _attempts(f"clear the lock {self._where(env)}"):
            current = self.objects.get(key)
            if current is None:
                raise not_locked_error(env, self._where(env))
            info, ttl = self._lease(current, key)
            if info.id != lock_id:
                raise mismatch_error(env, lock_id, info)
            age = (self.objects.now() - current.modified).total_seconds()
            if _holder_alive(info, age, ttl):
                raise live_holder_error(env, info, f"; its lease was renewed {age:.0f} s ago")
            if self.objects.delete(key, current.etag):
                return info
            attempt.lost()
        raise AssertionError("unreachable")  # _attempts raises when it runs out

    def lock_holders(self) -> list[LockInfo]:
        keys = self.objects.keys("locks/")
        return [
            self._lease(stored, key)[0] for key, stored in zip(keys, self._reads(keys), strict=True) if stored
        ]

    def lease_age(self, env: str) -> tuple[float, float] | None:
        """(seconds since the lease on `env` was renewed, its time to live); None: no lease."""
        key = _lock_key(env)
        stored = self.objects.get(key)
        if stored is None:
            return None
        return (self.objects.now() - stored.modified).total_seconds(), self._lease(stored, key)[1]

    # --- documents as bytes (migrate, doctor) --------------------------------------------

    def object_keys(self) -> list[str]:
        return sorted(key for area in STATE_AREAS for key in self.objects.keys(f"{area}/"))

    def read_object(self, key: str) -> bytes | None:
        stored = self.objects.get(key)
        return None if stored is None else stored.data

    def create_object(self, key: str, data: bytes) -> bool:
        return self.objects.create(key, data) is not None

    def _acquire(self, key: str, env: str, owner: str, timeout: float) -> _Hold:
        info = LockInfo(
            env=env,
            owner=owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=self.objects.now().isoformat(timespec="seconds"),
            id=secrets.token_hex(6),
        )
        data = self._lease_bytes(info)
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.05
        while True:
            etag = self.objects.create(key, data)
            if etag is not None:
                return _Hold(info, key, etag, self.lock_ttl, time.monotonic())
            current = self.objects.get(key)
            if current is not None:
                holder, ttl = self._lease(current, key)
                if holder.id == info.id:  # our create went through, its answer was lost and retried
                    return _Hold(info, key, current.etag, self.lock_ttl, time.monotonic())
                if self.objects.now() > current.modified + timedelta(seconds=ttl + CLOCK_SLACK):
                    etag = self.objects.replace(key, data, current.etag)  # take over an expired lease
                    if etag is not None:
                        return _Hold(info, key, etag, self.lock_ttl, time.monotonic())
                    continue
                if time.monotonic() >= deadline:
                    raise locked_error(env, holder, self._where(env))
            time.sleep(min(pause * random.uniform(0.5, 1.5), max(deadline - time.monotonic(), 0.01)))
            pause = min(pause * 2, 0.4)

    def _heartbeat(self, hold: _Hold) -> None:
        """Renew the lease every quarter of its time to live until the hold ends. A renewal
        refused because the lease changed hands marks it lost; failures to reach the store
        mark it lost once the lease has expired meanwhile."""
        while not hold.stop.wait(hold.ttl / 4):
            with hold.guard:
                try:
                    etag = self.objects.replace(hold.key, self._lease_bytes(hold.info, hold.claim), hold.etag)
                    if etag is None:
                        current = self.objects.get(hold.key)
                        if current is None:
                            hold.lost = "its lock was cleared (releasekit unlock)"
                            return
                        holder, _ = self._lease(current, hold.key)
                        if holder.id != hold.info.id:
                            hold.lost = f"the lock was taken over by {holder.owner} (lock id {holder.id})"
                            return
                        etag = current.etag  # our renewal went through; its answer was lost
                    hold.etag, hold.renewed = etag, time.monotonic()
                except StateError:
                    if time.monotonic() - hold.renewed > hold.ttl:
                        hold.lost = f"the store could not be reached to renew it for over {hold.ttl:g} s"
                        return

    def _fence(self, env: str) -> None:
        """Before a write to `env`'s records: is the lease this process holds on it still ours?"""
        hold = self._held.get(env)
        if hold is None:
            return
        with hold.guard:
            if not hold.lost and time.monotonic() - hold.renewed > hold.ttl:
                hold.lost = f"it was not renewed for over {hold.ttl:g} s and has expired"
            if not hold.lost:
                current = self.objects.get(hold.key)
                if current is None:
                    hold.lost = "its lock was cleared (releasekit unlock)"
                elif self._lease(current, hold.key)[0].id != hold.info.id:
                    holder = self._lease(current, hold.key)[0]
                    hold.lost = f"the lock was taken over by {holder.owner} (lock id {holder.id})"
            if hold.lost:
                raise LockLostError(
                    f"this run lost the lock of environment {env!r}: {hold.lost}; it stopped "
                    "before switching anything",
                    hint=f"see what runs on it with `releasekit status {env}`, then rerun; a rerun "
                    "finishes or undoes a switch that was started",
                )

    def _lease_bytes(self, info: LockInfo, claim: dict[str, Any] | None = None) -> bytes:
        document = {**holder_to_document(info), "lease": LEASE_FORMAT, "ttl_seconds": self.lock_ttl}
        if claim is not None:
            document["claim"] = claim
        document["renewed_at"] = self.objects.now().isoformat(timespec="seconds")
        return _json_bytes(document)

    def _lease(self, stored: Stored, key: str) -> tuple[LockInfo, float]:
        return parse_lease(stored.data, where=self.objects.describe(key))

    def _where(self, env: str) -> str:
        return f"lock object {self.objects.describe(_lock_key(env))}"

    # --- append-only folders -------------------------------------------------------------

    def _append(self, folder: str, render: Callable[[int], bytes], *, start: int = 0) -> int:
        seq = start  # the number to try; 0: list the folder to find it
        for attempt in _attempts(f"append to {self.objects.describe(folder)}"):
            seq = seq or len(self._seqs(folder)) + 1
            key, data = folder + _entry_name(seq), render(seq)
            if self.objects.create(key, data) is None:
                current = self.objects.get(key)
                if current is None:  # refused, then gone: list again after a pause
                    seq = 0
                    attempt.lost()
                    continue
                if current.data != data:
                    # Another writer took this number, so the next one is free or being raced
                    # for now: try it at once. Backing off here starves a writer (the more it
                    # loses, the longer it sleeps, the more it loses) until it gives up.
                    seq += 1
                    continue
            self._documents[key] = data  # ours (a retried create whose answer was lost, too)
            return seq
        raise AssertionError("unreachable")

    def _seqs(self, folder: str) -> list[int]:
        return _seqs_of(folder, self.objects.keys(folder), self.objects.describe)

    def _immutable(self, key: str) -> bytes:
        return self._immutables([key])[0]

    def _immutables(self, keys: list[str]) -> list[bytes]:
        """Documents that never change once written: read once per process, in parallel."""
        missing = [key for key in keys if key not in self._documents]
        for key, stored in zip(missing, self._reads(missing), strict=True):
            if stored is None:
                raise StateError(f"{self.objects.describe(key)} vanished while being read", hint=KEEP_HINT)
            self._documents[key] = stored.data
        return [self._documents[key] for key in keys]

    def _reads(self, keys: list[str]) -> list[Stored | None]:
        if len(keys) <= 1:
            return [self.objects.get(key) for key in keys]
        with ThreadPoolExecutor(min(_READERS, len(keys))) as pool:
            return list(pool.map(self.objects.get, keys))


class _Attempt:
    def __init__(self) -> None:
        self.pause = 0.02

    def lost(self) -> None:
        """A lost race: wait a jittered, growing moment so racers spread out."""
        time.sleep(random.uniform(0, self.pause))
        self.pause = min(self.pause * 2, 1.0)


def _attempts(what: str) -> Iterator[_Attempt]:
    attempt, deadline, tries = _Attempt(), time.monotonic() + WRITE_BUDGET, 0
    while time.monotonic() < deadline:
        tries += 1
        yield attempt
    raise StateError(
        f"could not {what}: other writers kept changing it ({tries} tries in {WRITE_BUDGET:g} s)",
        hint="something writes to the state store in a tight loop; find it, then rerun",
    )


def _seqs_of(folder: str, keys: list[str], describe: Callable[[str], str]) -> list[int]:
    names = [key[len(folder) :] for key in keys]
    seqs = sorted(int(name.removesuffix(".json")) for name in names if _ENTRY_NAME.match(name))
    for expected, seq in enumerate(seqs, start=1):
        if seq != expected:
            raise StateError(
                f"{describe(folder)}: entry {_entry_name(expected)} is missing "
                f"(found {_entry_name(seq)} next)",
                hint="restore the missing entry from a backup; releasekit never rewrites a ledger",
            )
    for name in names:
        if _ENTRY_NAME.match(name) and name != _entry_name(int(name.removesuffix(".json"))):
            raise StateError(f"{describe(folder + name)}: not a ledger entry name", hint=KEEP_HINT)
    return seqs


def parse_lease(data: bytes, *, where: str) -> tuple[LockInfo, float]:
    """A lease document: its holder and its time to live. StateError naming `where` when it
    does not read, or a newer releasekit wrote it."""
    hint = f"if no releasekit run of this environment is going on, delete {where}"
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise StateError(f"{where}: unreadable lock: {exc}", hint=hint) from None
    if not isinstance(document, dict) or document.get("lease") != LEASE_FORMAT:
        raise StateError(f"{where}: not a releasekit lock this version reads", hint=hint)
    ttl = document.get("ttl_seconds")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        raise StateError(f"{where}: ttl_seconds: should be a positive number", hint=hint)
    document = {k: v for k, v in document.items() if k not in {"lease", "ttl_seconds", "renewed_at", "claim"}}
    try:
        return holder_from_document(document, where=where), float(ttl)
    except StateError as exc:
        raise StateError(exc.message, hint=hint) from None


def _holder_alive(info: LockInfo, age: float, ttl: float) -> bool:
    """Whether a lease's holder still runs: on this host, its process says; elsewhere, a
    renewal within half the time to live (two missed heartbeats, give or take the store's
    whole-second timestamps) says."""
    if info.host == socket.gethostname():
        return process_alive(info.pid)
    return age < ttl / 2 + CLOCK_SLACK


def _lock_key(env: str) -> str:
    return f"locks/{env_key(env)}.json"


def _entry_name(seq: int) -> str:
    return f"{seq:08d}.json"


def _branch(stored: Stored, where: str) -> BranchEnvironment:
    try:
        document = json.loads(stored.data)
    except ValueError as exc:
        raise StateError(f"{where}: unreadable registry record: {exc}", hint=KEEP_HINT) from None
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a releasekit registry record", hint=KEEP_HINT)
    return branch_from_document(document, where=where)


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
