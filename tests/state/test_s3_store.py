"""The S3 store's leases, their fencing, and what it does with objects it cannot read.

1. Leases: a lease past its time to live is taken over (its holder killed with SIGKILL, or
   left by hand by a holder on another host); a live holder's heartbeat keeps it past its
   time to live; `break_lock` (`releasekit unlock ENV --id ID`) refuses a wrong id and a
   live holder, and clears a dead one.
2. Fencing: a holder whose lease was taken over or cleared gets LockLostError (exit 4) at
   its next append, register or unregister, and writes nothing after that; it never
   removes the lease that replaced its own.
3. Corrupt or unknown-version objects (ledger entries, check records, registry records,
   leases): a StateError naming the s3:// object, and the bucket's bytes unchanged.

Holders run as real child processes (tests/state/_s3_workers.py) wherever a heartbeat
thread has to keep running, stop (SIGSTOP) or die (SIGKILL) on its own.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from _s3_workers import branch, lease_bytes

from releasekit.errors import LockedError, LockLostError, LockMismatchError, NotFoundError, StateError
from releasekit.state.base import CheckRecord, LockInfo
from releasekit.state.codec import env_key
from releasekit.state.remote import LEASE_FORMAT
from tests.support.s3 import Bucket
from tests.support.state_factories import make_entry

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_s3_workers.py"
# Seconds: short, so expiry happens within a test (a lease is taken over TTL + 1 s after its
# last renewal), yet renewed every TTL / 4 even on a loaded machine.
TTL = 2.0


class Holder:
    """A child process holding a lease, told what to do one line at a time."""

    def __init__(self, bucket: Bucket, env: str, owner: str, ttl: float, host: str = "") -> None:
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}
        self.child = subprocess.Popen(
            [sys.executable, str(WORKER), "hold", bucket.url, bucket.endpoint, env, owner, str(ttl), host],
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        said = self.hear()
        assert said.startswith("locked "), said
        self.lock_id = said.split()[1]

    def _read(self) -> None:
        assert self.child.stdout is not None
        for line in self.child.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put("<exited>")

    def hear(self, timeout: float = 30) -> str:
        return self._lines.get(timeout=timeout)

    def ask(self, line: str) -> str:
        assert self.child.stdin is not None
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()
        return self.hear()

    def kill(self) -> None:
        os.kill(self.child.pid, signal.SIGKILL)
        self.child.wait()

    def pause(self) -> None:
        os.kill(self.child.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.child.pid, signal.SIGCONT)


@contextmanager
def holding(bucket: Bucket, env: str, owner: str, ttl: float = 60.0, host: str = "") -> Iterator[Holder]:
    holder = Holder(bucket, env, owner, ttl, host)
    try:
        yield holder
    finally:
        holder.child.kill()
        holder.child.wait()


def lease_id(bucket: Bucket, env: str) -> str | None:
    """The lock id the lease on `env` in the bucket names; None: no lease."""
    stored = bucket.store().objects.get(f"locks/{env_key(env)}.json")
    return None if stored is None else str(json.loads(stored.data)["id"])


def snapshot(bucket: Bucket) -> dict[str, bytes]:
    """Every object's bytes, under the prefix or not."""
    client = bucket.client()
    return {key: client.get_object(Bucket=bucket.name, Key=key)["Body"].read() for key in bucket.keys()}  # noqa: SIM118


def url_of(bucket: Bucket, key: str) -> str:
    return f"{bucket.url}/{key}"


# --- 1. leases -------------------------------------------------------------------------


def test_a_killed_holders_lease_is_taken_over_once_its_ttl_has_passed(bucket: Bucket) -> None:
    store = bucket.store(lock_ttl=TTL)
    with holding(bucket, "prod", "deploy prod by ci", TTL) as holder:
        with (
            pytest.raises(LockedError, match=f"lock id {holder.lock_id}"),
            store.lock("prod", owner="me", timeout=0),
        ):
            pass
        holder.kill()
        assert lease_id(bucket, "prod") == holder.lock_id  # SIGKILL ran no cleanup
        started = time.monotonic()
        with store.lock("prod", owner="me", timeout=6 * TTL) as info:
            waited = time.monotonic() - started
            assert lease_id(bucket, "prod") == info.id != holder.lock_id
            store.append(make_entry(note="after the takeover"))
    print(f"\ntook over a killed holder's {TTL:g} s lease after {waited:.2f} s")
    assert waited > TTL / 2  # not at once: only once the lease expired
    assert lease_id(bucket, "prod") is None
    assert [entry.note for entry in store.entries("prod")] == ["after the takeover"]


def test_a_lease_left_on_another_host_blocks_until_its_ttl_passes(bucket: Bucket) -> None:
    store = bucket.store()
    bucket.write("locks/prod.json", lease_bytes("prod", ttl=3600))
    [holder] = store.lock_holders()
    assert (holder.host, holder.pid, holder.id) == ("ci-runner-9", 4242, "0a1b2c3d4e5f")
    started = time.monotonic()
    with pytest.raises(LockedError) as refused, store.lock("prod", owner="me", timeout=1.0):
        pass
    assert time.monotonic() - started > 0.9  # it tried for its whole timeout first
    assert "deploy by ci-runner-9 (pid 4242 on ci-runner-9)" in str(refused.value)
    assert "releasekit unlock prod --id 0a1b2c3d4e5f" in str(refused.value)

    bucket.write("locks/prod.json", lease_bytes("prod", ttl=1))  # its holder's own, short ttl
    started = time.monotonic()
    with store.lock("prod", owner="me", timeout=10) as info:
        waited = time.monotonic() - started
        assert lease_id(bucket, "prod") == info.id
    assert waited > 0.5  # not at once: only once the short lease expired


def test_a_live_holders_heartbeat_keeps_its_lease_past_its_ttl(bucket: Bucket) -> None:
    store = bucket.store()
    with holding(bucket, "prod", "a long deploy", TTL) as holder:  # renewed every TTL / 4
        first = store.objects.get("locks/prod.json")
        assert first is not None
        started = time.monotonic()
        # A contender trying again and again for twice the ttl never gets it.
        with (
            pytest.raises(LockedError, match=f"lock id {holder.lock_id}"),
            store.lock("prod", owner="me", timeout=2 * TTL),
        ):
            pass
        assert time.monotonic() - started >= 2 * TTL
        now = store.objects.get("locks/prod.json")
        assert now is not None and now.etag != first.etag  # renewed meanwhile
        age = store.lease_age("prod")
        assert age is not None and age[0] <= TTL + 1  # Last-Modified has whole seconds
        # Its own writes pass the fence, past its ttl since it took the lock.
        assert holder.ask("append still mine") == "appended 1"
        assert holder.ask("release") == "released"
    assert lease_id(bucket, "prod") is None


def test_unlock_refuses_a_wrong_id_and_a_live_holder_and_clears_a_killed_one(bucket: Bucket) -> None:
    store = bucket.store()
    with holding(bucket, "feature/x", "deploy by ci") as holder:
        with pytest.raises(LockMismatchError, match=f"held under id '{holder.lock_id}'"):
            store.break_lock("feature/x", "ffffffffffff")
        with pytest.raises(LockedError, match=f"live process: pid {holder.child.pid} on host "):
            store.break_lock("feature/x", holder.lock_id)
        assert holder.ask("append still mine") == "appended 1"  # refused means untouched
        holder.kill()
    with pytest.raises(LockMismatchError):
        store.break_lock("feature/x", "ffffffffffff")
    assert lease_id(bucket, "feature/x") == holder.lock_id
    cleared = store.break_lock("feature/x", holder.lock_id)
    assert (cleared.env, cleared.owner, cleared.pid, cleared.id) == (
        "feature/x",
        "deploy by ci",
        holder.child.pid,
        holder.lock_id,
    )
    assert lease_id(bucket, "feature/x") is None
    with pytest.raises(NotFoundError, match="not locked"):
        store.break_lock("feature/x", holder.lock_id)
    with store.lock("feature/x", owner="me", timeout=0) as info:  # at once: no ttl to wait out
        assert info.pid == os.getpid()


# --- 2. fencing ------------------------------------------------------------------------


def test_a_holder_paused_past_its_ttl_is_fenced_once_its_lease_is_taken_over(bucket: Bucket) -> None:
    store = bucket.store()
    with holding(bucket, "prod", "paused deploy", TTL) as holder:
        holder.pause()  # SIGSTOP: alive, but its heartbeat stops (a frozen VM, a long GC pause)
        with store.lock("prod", owner="next deploy", timeout=6 * TTL) as info:
            store.append(make_entry(note="by the next holder"))
            holder.resume()
            said = holder.ask("append late")
            assert said.startswith("lost this run lost the lock of environment 'prod': "), said
            # Its heartbeat or its fence saw it first: the lease changed hands, or ran out.
            assert f"taken over by next deploy (lock id {info.id})" in said or "has expired" in said, said
            assert holder.ask("register prod").startswith("lost ")
            assert holder.ask("release") == "released"
            assert lease_id(bucket, "prod") == info.id  # it left the new lease alone
            store.append(make_entry(note="still the next holder's"))
    assert [entry.note for entry in store.entries("prod")] == [
        "by the next holder",
        "still the next holder's",
    ]
    assert store.branches() == []
    assert store.lock_holders() == []


def test_unlock_clears_a_frozen_holder_on_another_host_which_is_then_fenced(bucket: Bucket) -> None:
    store = bucket.store()
    with holding(bucket, "prod", "deploy by ci-runner-7", TTL, host="ci-runner-7") as holder:
        time.sleep(TTL)  # renewing all along: judged by its renewals, it is alive
        with pytest.raises(LockedError, match="renewed"):
            store.break_lock("prod", holder.lock_id)
        holder.pause()
        cleared = retry(lambda: store.break_lock("prod", holder.lock_id), within=6 * TTL)
        assert (cleared.host, cleared.id) == ("ci-runner-7", holder.lock_id)
        holder.resume()
        said = holder.ask("append late")
        assert said.startswith("lost this run lost the lock of environment 'prod': "), said
        # Its heartbeat or its fence saw it first: the lease was cleared, or ran out meanwhile.
        assert "its lock was cleared (releasekit unlock)" in said or "has expired" in said, said
        assert holder.ask("register prod").startswith("lost ")
        assert holder.ask("release") == "released"
    assert store.entries("prod") == []
    assert store.branches() == []
    assert store.lock_holders() == []


def retry(action: Callable[[], LockInfo], within: float) -> LockInfo:
    deadline = time.monotonic() + within
    while True:
        try:
            return action()
        except LockedError:
            assert time.monotonic() < deadline, f"still refused after {within:g} s"
            time.sleep(0.1)


@pytest.mark.parametrize("how", ["taken over", "cleared"])
def test_a_holder_whose_lease_changed_hands_writes_nothing_more(bucket: Bucket, how: str) -> None:
    store = bucket.store()
    with store.lock("feature/x", owner="me"):
        store.register(branch("feature/x"))  # a branch environment is registered before its first entry
        store.append(make_entry(env="feature/x", note="while mine"))
        if how == "taken over":
            bucket.write("locks/feature%2Fx.json", lease_bytes("feature/x", owner="a later deploy"))
        else:
            bucket.client().delete_object(Bucket=bucket.name, Key=f"{bucket.prefix}/locks/feature%2Fx.json")
        before = snapshot(bucket)
        with pytest.raises(LockLostError) as lost:
            store.append(make_entry(env="feature/x", note="after losing it"))
        assert lost.value.exit_code == 4
        expected = (
            "the lock was taken over by a later deploy (lock id 0a1b2c3d4e5f)"
            if how == "taken over"
            else "its lock was cleared (releasekit unlock)"
        )
        assert f"this run lost the lock of environment 'feature/x': {expected}" in str(lost.value)
        with pytest.raises(LockLostError):
            store.register(replace(branch("feature/x"), pinned=True))
        with pytest.raises(LockLostError):
            store.unregister("feature/x")
        with pytest.raises(LockLostError):  # and it stays lost
            store.append(make_entry(env="feature/x", note="again"))
    assert snapshot(bucket) == before  # nothing written, and the new lease not removed
    assert [entry.note for entry in store.entries("feature/x")] == ["while mine"]


# --- 3. corrupt and unknown-version objects --------------------------------------------

LEDGER_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda data: b'{"format": "releasekit.ledger/1", "env": "pro',
    "future format": lambda data: data.replace(b"releasekit.ledger/1", b"releasekit.ledger/9"),
    "not an object": lambda data: b"[1, 2, 3]",
}


@pytest.mark.parametrize("damage", sorted(LEDGER_DAMAGE))
def test_a_damaged_ledger_entry_is_named_and_left_alone(bucket: Bucket, damage: str) -> None:
    store = bucket.store()
    for n in (1, 2):
        store.append(make_entry(release_id=n))
    key = "ledger/prod/00000001.json"
    bucket.write(key, LEDGER_DAMAGE[damage](bucket.read(key)))
    before = snapshot(bucket)
    fresh = bucket.store()  # nothing cached: it reads what the bucket holds
    for read in (fresh.entries, lambda env: fresh.environments()):
        with pytest.raises(StateError, match=re.escape(url_of(bucket, key) + ":")) as raised:
            read("prod")
        assert "releasekit never overwrites it" in str(raised.value)
    assert snapshot(bucket) == before


@pytest.mark.parametrize("damage", ["garbage", "future format"])
def test_a_damaged_check_record_is_named_and_left_alone(bucket: Bucket, damage: str) -> None:
    store = bucket.store()
    record = CheckRecord(
        git_sha="b" * 40,
        env="dev",
        base="prod",
        release_id=1,
        passed=True,
        verdict="PASSED",
        statuses={"lint": "passed"},
        who="alice",
        at="2024-05-01T12:00:00+00:00",
    )
    store.record_check(record)
    key = f"checks/{'b' * 40}/00000001.json"
    data = bucket.read(key)
    bucket.write(key, b"\x00\xffnot json" if damage == "garbage" else data.replace(b"check/1", b"check/7"))
    before = snapshot(bucket)
    with pytest.raises(StateError, match=re.escape(url_of(bucket, key))):
        bucket.store().checks("b" * 40)
    assert snapshot(bucket) == before


@pytest.mark.parametrize("damage", ["garbage", "future format"])
def test_a_damaged_registry_record_is_named_and_left_alone(bucket: Bucket, damage: str) -> None:
    store = bucket.store()
    store.register(branch("feature/x"))
    key = "registry/feature%2Fx.json"
    data = bucket.read(key)
    bucket.write(key, b"{{{" if damage == "garbage" else data.replace(b"registry/1", b"registry/2"))
    before = snapshot(bucket)
    for read in (store.branches, lambda: store.branch("feature/x")):
        with pytest.raises(StateError, match=re.escape(url_of(bucket, key) + ":")):
            read()
    assert snapshot(bucket) == before


LEASE_DAMAGE = {
    "garbage": b'{"lease": "releasekit.lease/1", "own',
    "future format": lease_bytes("prod").replace(b"releasekit.lease/1", b"releasekit.lease/2"),
    "no ttl": lease_bytes("prod").replace(b'"ttl_seconds": 60.0', b'"ttl_seconds": -1'),
    "holder fields missing": json.dumps({"lease": LEASE_FORMAT, "ttl_seconds": 60}).encode(),
}


@pytest.mark.parametrize("damage", sorted(LEASE_DAMAGE))
def test_a_damaged_lease_is_named_and_left_alone(bucket: Bucket, damage: str) -> None:
    store = bucket.store()
    bucket.write("locks/prod.json", LEASE_DAMAGE[damage])
    before = snapshot(bucket)
    where = url_of(bucket, "locks/prod.json")
    attempts: dict[str, Callable[[], object]] = {
        "lock": lambda: store.lock("prod", owner="me", timeout=0).__enter__(),
        "unlock": lambda: store.break_lock("prod", "0a1b2c3d4e5f"),
        "holders": store.lock_holders,
        "age": lambda: store.lease_age("prod"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(StateError) as raised:
            attempt()
        assert type(raised.value) is StateError, name  # not "locked": unreadable
        assert str(raised.value).startswith(f"{where}: "), (name, str(raised.value))
        assert raised.value.hint == f"if no releasekit run of this environment is going on, delete {where}"
    assert snapshot(bucket) == before


def test_a_lease_damaged_while_held_stops_the_holders_writes(bucket: Bucket) -> None:
    store = bucket.store()
    with store.lock("prod", owner="me"):
        bucket.write("locks/prod.json", LEASE_DAMAGE["garbage"])
        before = snapshot(bucket)
        with pytest.raises(
            StateError, match=re.escape(url_of(bucket, "locks/prod.json") + ": unreadable lock")
        ):
            store.append(make_entry())
    assert snapshot(bucket) == before  # no entry, and the damaged lease not removed
