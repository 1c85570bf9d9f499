"""How runs exclude each other, beside the documents: a strategy per kind of store.

- `FileLocks` (a local folder): an operating-system file lock per environment
  (`locks/<env-key>.lock`), freed by the kernel when its holder dies, and a holder record
  beside it (`locks/<env-key>.holder.json`) saying who holds it and what its run claims.
- `LeaseLocks` (a bucket): a lease object per environment (`locks/<env-key>.json`) created
  with If-None-Match, renewed by a heartbeat, taken over once it expires by the store's
  clock, and checked before each write its holder makes (fencing).

Both answer the same questions: hold, is it still ours (fence), claim, claims, break a dead
holder's lock, and the lock records doctor and `state show` list.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from filelock import FileLock, Timeout

from releasekit.errors import LockLostError, StateError
from releasekit.state.base import Claim, HeldLock, LockInfo
from releasekit.state.codec import (
    claim_from_document,
    holder_from_bytes,
    holder_from_document,
    holder_to_document,
    json_bytes,
)
from releasekit.state.folder import (
    ensure_dir,
    fsync_dir,
    remove_dead_writers_temps,
    write_replacing,
)
from releasekit.state.locking import (
    live_holder_error,
    locked_error,
    mismatch_error,
    not_locked_error,
    process_alive,
)
from releasekit.state.objects import ObjectStore, Stored, attempts, read_all

DEFAULT_LOCK_TTL = 60.0  # seconds a lease lives without renewal; renewed every quarter of it
LEASE_FORMAT = "releasekit.lease/1"
# S3's Last-Modified and Date have whole seconds, so a lease's age read from them can come
# out up to a second more than it is: expiry and liveness wait that second out, or a lease
# renewed 0.3 s ago could look a second old and be taken over before its time to live.
CLOCK_SLACK = 1.0


class Locks(Protocol):
    """One kind of store's locks. `name` is the lock's file or object stem (an environment's
    key, or PLANNING_LOCK); `env` is what messages call it."""

    def holding(
        self, name: str, env: str, owner: str, timeout: float
    ) -> AbstractContextManager[LockInfo]: ...

    def holds(self, env: str) -> bool:
        """Whether this process holds `env`'s lock now."""
        ...

    def fence(self, env: str) -> None:
        """Before a write to `env`'s records: LockLostError if the lock this process holds on
        it is no longer its own (nothing to check when it holds none)."""
        ...

    def claim(self, env: str, document: dict[str, Any]) -> None: ...

    def claims(self) -> list[Claim]: ...

    def break_lock(self, name: str, env: str, lock_id: str) -> LockInfo: ...

    def records(self) -> tuple[list[HeldLock], list[StateError]]:
        """Every lock record in the store, held or left behind, and those that do not read."""
        ...


# --- a local folder: file locks and holder records -----------------------------------------


class FileLocks:
    """Safe across threads and processes on one machine."""

    def __init__(
        self,
        root: Path,
        translated: Callable[[], AbstractContextManager[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self.folder = Path(root) / "locks"
        self._translated = translated
        self._clock = clock
        self._holds: dict[str, tuple[Path, LockInfo]] = {}  # env -> the lock this process holds

    @contextmanager
    def holding(self, name: str, env: str, owner: str, timeout: float) -> Iterator[LockInfo]:
        with self._translated():
            file_lock, holder = self._files(name, timeout)
            try:
                file_lock.acquire()
            except Timeout:
                raise locked_error(env, _read_holder(holder), f"lock file {file_lock.lock_file}") from None
        try:
            with self._translated():
                info = _new_holder(env, owner, self._clock())
                # Replaces any record a killed holder left: holding the file lock proves it stale.
                write_replacing(holder, json_bytes(holder_to_document(info)))
            self._holds[env] = (holder, info)
            try:
                yield info
            finally:
                self._holds.pop(env, None)
                # Unlink before releasing, so we never delete the next holder's record.
                with self._translated():
                    holder.unlink(missing_ok=True)
        finally:
            file_lock.release()

    def holds(self, env: str) -> bool:
        return env in self._holds

    def fence(self, env: str) -> None:
        return None  # the kernel holds a file lock until its holder dies: it cannot be lost

    def claim(self, env: str, document: dict[str, Any]) -> None:
        """The claim rides on the holder record: it goes when the lock is let go, and a
        killed holder's record (its process gone) carries a claim that is no longer live."""
        holder, info = self._holds[env]
        with self._translated():
            write_replacing(holder, json_bytes({**holder_to_document(info), "claim": document}))

    def claims(self) -> list[Claim]:
        found = []
        for path in self._holder_paths():
            try:
                data = path.read_bytes()
                info, document = holder_from_bytes(data, where=str(path)), json.loads(data)
            except FileNotFoundError:
                continue  # let go while we looked
            except (OSError, ValueError, StateError):
                continue  # a record that does not read carries no claim we could honour
            alive = info.host != socket.gethostname() or process_alive(info.pid)
            claim = claim_from_document(document, info, alive, where=str(path))
            if claim is not None:
                found.append(claim)
        return found

    def break_lock(self, name: str, env: str, lock_id: str) -> LockInfo:
        """The operating system frees the file lock of a process that dies, so a dead holder
        leaves only its record; the record goes only while the file lock is free and held by
        us, so a live holder's record is never removed."""
        with self._translated():
            file_lock, holder = self._files(name, 0.0)
            with _acquired_if_free(file_lock) as free:
                info = _load_holder(holder)
                if info is None:
                    raise not_locked_error(env, str(holder))
                if info.id != lock_id:
                    raise mismatch_error(env, lock_id, info)
                if not free:
                    raise live_holder_error(env, info)
                holder.unlink()
                fsync_dir(holder.parent)
                return info

    def records(self) -> tuple[list[HeldLock], list[StateError]]:
        found: list[HeldLock] = []
        problems: list[StateError] = []
        for path in self._holder_paths():
            try:
                info = _load_holder(path)
            except StateError as exc:
                problems.append(exc)
                continue
            if info is None:
                continue  # released while we looked
            if info.host != socket.gethostname() or process_alive(info.pid):
                # A holder on another host (a shared folder) counts as running: nothing here can tell.
                found.append(HeldLock(info, str(path), "held", "its process is running"))
            else:
                gone = f"its process is gone: clear it with releasekit unlock {info.env} --id {info.id}"
                found.append(HeldLock(info, str(path), "left behind", gone))
        return found, problems

    def _holder_paths(self) -> list[Path]:
        with self._translated():
            return sorted(self.folder.glob("*.holder.json")) if self.folder.is_dir() else []

    def _files(self, name: str, timeout: float) -> tuple[FileLock, Path]:
        ensure_dir(self.folder)
        remove_dead_writers_temps(self.folder)
        # A negative filelock timeout waits forever; this lock must fail fast instead.
        lock = FileLock(self.folder / f"{name}.lock", timeout=max(timeout, 0.0))
        return lock, self.folder / f"{name}.holder.json"


@contextmanager
def _acquired_if_free(file_lock: FileLock) -> Iterator[bool]:
    """Hold `file_lock` for the block if nobody holds it now; say whether we got it."""
    try:
        file_lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        file_lock.release()


def _read_holder(path: Path) -> LockInfo | None:
    # Best effort: the record only improves the message; a missing one must not hide the lock.
    try:
        return _load_holder(path)
    except StateError:
        return None


def _load_holder(path: Path) -> LockInfo | None:
    """The lock-holder record, None when there is none; StateError when it is unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"could not read {path}: {exc.strerror}") from None
    return holder_from_bytes(data, where=str(path))


# --- a bucket: leases with a heartbeat and fencing -------------------------------------------


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


class LeaseLocks:
    """Safe across threads, processes and machines sharing one object store."""

    def __init__(self, objects: ObjectStore, ttl: float = DEFAULT_LOCK_TTL) -> None:
        if ttl <= 0:
            raise StateError(f"a lock's time to live must be positive, not {ttl}")
        self.objects = objects
        self.ttl = ttl
        self._held: dict[str, _Hold] = {}  # env -> the lease this process holds on it

    @contextmanager
    def holding(self, name: str, env: str, owner: str, timeout: float) -> Iterator[LockInfo]:
        key = _lock_key(name)
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

    def holds(self, env: str) -> bool:
        return env in self._held

    def fence(self, env: str) -> None:
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
                else:
                    holder = self._lease(current, hold.key)[0]
                    if holder.id != hold.info.id:
                        hold.lost = f"the lock was taken over by {holder.owner} (lock id {holder.id})"
            if hold.lost:
                raise LockLostError(
                    f"this run lost the lock of environment {env!r}: {hold.lost}; it stopped "
                    "before switching anything",
                    hint=f"see what runs on it with `releasekit status {env}`, then rerun; a rerun "
                    "finishes or undoes a switch that was started",
                )

    def claim(self, env: str, document: dict[str, Any]) -> None:
        """The claim rides on the lease: renewals carry it, letting go removes it, and a
        lease that expired (its holder gone) carries a claim that is no longer live."""
        self.fence(env)
        hold = self._held[env]
        with hold.guard:
            hold.claim = document
            etag = self.objects.replace(hold.key, self._lease_bytes(hold.info, hold.claim), hold.etag)
            if etag is not None:
                hold.etag, hold.renewed = etag, time.monotonic()
                return
        self.fence(env)  # it changed hands: LockLostError names who has it
        raise LockLostError(f"this run lost the lock of environment {env!r} while claiming what it builds")

    def claims(self) -> list[Claim]:
        found = []
        for key, stored in self._leases():
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

    def break_lock(self, name: str, env: str, lock_id: str) -> LockInfo:
        key = _lock_key(name)
        where = f"lock object {self.objects.describe(key)}"
        for attempt in attempts(f"clear the lock {where}"):
            current = self.objects.get(key)
            if current is None:
                raise not_locked_error(env, where)
            info, ttl = self._lease(current, key)
            if info.id != lock_id:
                raise mismatch_error(env, lock_id, info)
            age = (self.objects.now() - current.modified).total_seconds()
            if _holder_alive(info, age, ttl):
                raise live_holder_error(env, info, f"; its lease was renewed {age:.0f} s ago")
            if self.objects.delete(key, current.etag):
                return info
            attempt.lost()
        raise AssertionError("unreachable")  # attempts raises when it runs out

    def records(self) -> tuple[list[HeldLock], list[StateError]]:
        found: list[HeldLock] = []
        problems: list[StateError] = []
        for key, stored in self._leases():
            where = self.objects.describe(key)
            try:
                info, ttl = parse_lease(stored.data, where=where)
            except StateError as exc:
                problems.append(exc)
                continue
            age = (self.objects.now() - stored.modified).total_seconds()
            expired = age > ttl
            state: Literal["held", "left behind"] = "left behind" if expired else "held"
            detail = f"lease renewed {age:.0f} s ago, expires after {ttl:g} s" + (
                f" (expired: clear it with releasekit unlock {info.env} --id {info.id})" if expired else ""
            )
            found.append(HeldLock(info, where, state, detail))
        return found, problems

    def lease_age(self, name: str) -> tuple[float, float] | None:
        """(seconds since the lease was renewed, its time to live); None: no lease."""
        key = _lock_key(name)
        stored = self.objects.get(key)
        if stored is None:
            return None
        return (self.objects.now() - stored.modified).total_seconds(), self._lease(stored, key)[1]

    def _leases(self) -> list[tuple[str, Stored]]:
        keys = self.objects.keys("locks/")
        return [
            (key, stored) for key, stored in zip(keys, read_all(self.objects, keys), strict=True) if stored
        ]

    def _let_go(self, env: str, hold: _Hold, beat: threading.Thread) -> None:
        hold.stop.set()
        beat.join()
        self._held.pop(env, None)
        with hold.guard:
            if not hold.lost:
                self.objects.delete(hold.key, hold.etag)  # False: it changed hands; leave it

    def _acquire(self, key: str, env: str, owner: str, timeout: float) -> _Hold:
        info = _new_holder(env, owner, self.objects.now())
        data = self._lease_bytes(info)
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.05
        while True:
            etag = self.objects.create(key, data)
            if etag is not None:
                return _Hold(info, key, etag, self.ttl, time.monotonic())
            current = self.objects.get(key)
            if current is not None:
                holder, ttl = self._lease(current, key)
                if holder.id == info.id:  # our create went through, its answer was lost and retried
                    return _Hold(info, key, current.etag, self.ttl, time.monotonic())
                if self.objects.now() > current.modified + timedelta(seconds=ttl + CLOCK_SLACK):
                    etag = self.objects.replace(key, data, current.etag)  # take over an expired lease
                    if etag is not None:
                        return _Hold(info, key, etag, self.ttl, time.monotonic())
                    continue
                if time.monotonic() >= deadline:
                    raise locked_error(env, holder, f"lock object {self.objects.describe(key)}")
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

    def _lease_bytes(self, info: LockInfo, claim: dict[str, Any] | None = None) -> bytes:
        document = {**holder_to_document(info), "lease": LEASE_FORMAT, "ttl_seconds": self.ttl}
        if claim is not None:
            document["claim"] = claim
        document["renewed_at"] = self.objects.now().isoformat(timespec="seconds")
        return json_bytes(document)

    def _lease(self, stored: Stored, key: str) -> tuple[LockInfo, float]:
        return parse_lease(stored.data, where=self.objects.describe(key))


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


def _lock_key(name: str) -> str:
    return f"locks/{name}.json"


# --- shared by both -------------------------------------------------------------------------


def _new_holder(env: str, owner: str, now: datetime) -> LockInfo:
    since = now.astimezone(UTC).isoformat(timespec="seconds")
    # A new id for every hold, so `releasekit unlock --id` can never clear a later holder's lock.
    return LockInfo(
        env=env, owner=owner, host=socket.gethostname(), pid=os.getpid(), since=since, id=secrets.token_hex(6)
    )
