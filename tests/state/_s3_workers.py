"""Child processes for the S3 store tests: real processes that hold leases, race for a
lock, and append and register at once against one bucket; and the records and leases
the tests write, importable by the test modules too.

Run as `python _s3_workers.py <command> <state-url> <endpoint> [...]` with the checkout and
tests/state on PYTHONPATH, and the AWS credentials of tests/s3_support.py in the
environment (the test's own, inherited).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from releasekit.errors import LockedError, LockLostError, StateError
from releasekit.state.base import BranchEnvironment, LockInfo
from releasekit.state.codec import holder_to_document
from releasekit.state.remote import LEASE_FORMAT, ObjectStateStore
from releasekit.state.s3 import S3Objects
from tests.support.state_factories import make_entry

REGION = "us-east-1"
GIVE_UP_SECONDS = 120.0  # a child whose test died stops waiting and exits


def open_store(url: str, endpoint: str, ttl: float = 60.0) -> ObjectStateStore:
    return ObjectStateStore(S3Objects(url, region=REGION, endpoint_url=endpoint), lock_ttl=ttl)


def branch(name: str, owner: str = "alice") -> BranchEnvironment:
    return BranchEnvironment(
        branch=name,
        schema="br_" + name.replace("/", "_"),
        base="dev",
        base_release=1,
        owner=owner,
        created_at="2024-05-01T12:00:00+00:00",
        expires_at="2024-05-15T12:00:00+00:00",
    )


def lease_bytes(
    env: str,
    *,
    owner: str = "deploy by ci-runner-9",
    host: str = "ci-runner-9",
    pid: int = 4242,
    lock_id: str = "0a1b2c3d4e5f",
    ttl: float = 60.0,
) -> bytes:
    """A lease as a releasekit process on another host writes it."""
    info = LockInfo(env=env, owner=owner, host=host, pid=pid, since="2024-05-01T12:00:00+00:00", id=lock_id)
    document = {**holder_to_document(info), "lease": LEASE_FORMAT, "ttl_seconds": ttl}
    return json.dumps({**document, "renewed_at": "2024-05-01T12:00:00+00:00"}).encode()


def say(line: str) -> None:
    print(line, flush=True)


def hold(url: str, endpoint: str, env: str, owner: str, ttl: float, host: str) -> None:
    """Hold `env`'s lock and do what stdin says, one command a line, answering one line
    each: `append NOTE`, `register NAME`; `release` (or end of input) leaves the lock.
    `host`, when given, is the host this holder claims to run on (another machine)."""
    if host:
        socket.gethostname = lambda: host  # what the lease records, and nothing else here
    store = open_store(url, endpoint, ttl)
    with store.lock(env, owner=owner, timeout=10) as info:
        say(f"locked {info.id}")
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "release":
                break
            try:
                if command == "append":
                    say(f"appended {store.append(make_entry(env=env, note=argument)).seq}")
                elif command == "register":
                    store.register(branch(argument, owner))
                    say("registered")
                else:
                    say(f"unknown {command}")
            except LockLostError as lost:
                say(f"lost {lost.message}")
    say("released")


def race(url: str, endpoint: str, env: str, rounds: int, signals: Path) -> None:
    """Promote once per round, as promotion will: take the lock without waiting, read the
    ledger, append the next release. The winner holds the lock until the test has heard
    from every racer, so a loser cannot slip in after it and win the same round. Round n's
    signals are files in `signals/n/`."""
    store, me = open_store(url, endpoint), os.getpid()
    ready(store, signals)
    for n in range(rounds):
        here = signals / str(n)
        wait_for(here / "go")
        try:
            with store.lock(env, owner=f"promoter {me}", timeout=0) as info:
                release_id = len(store.entries(env)) + 1
                store.append(make_entry(env=env, release_id=release_id, note=f"{n}:{me}:{info.id}"))
                (here / f"{me}.won").touch()
                wait_for(here / "release")
            (here / "free").touch()
        except LockedError:
            (here / f"{me}.lost").touch()


def write_many(url: str, endpoint: str, env: str, count: int, go: Path) -> None:
    """Append `count` entries and register `count` branches of its own, interleaved, and
    write a record every writer shares each time; then forget its odd-numbered branches."""
    store, me = open_store(url, endpoint), os.getpid()
    ready(store, go.parent)
    wait_for(go)
    for n in range(count):
        store.append(make_entry(env=env, release_id=n + 1, note=f"{me}:{n}"))
        store.register(branch(f"w{me}/b{n}", owner=f"{me}:{n}"))
        store.register(branch("shared", owner=f"{me}:{n}"))
    for n in range(1, count, 2):
        store.unregister(f"w{me}/b{n}")


def ready(store: ObjectStateStore, signals: Path) -> None:
    """Say so once started and connected, so the race starts when every racer can run."""
    store.lock_holders()
    (signals / f"ready-{os.getpid()}").touch()


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {path}")
        time.sleep(0.01)


def main(argv: list[str]) -> None:
    command, url, endpoint, *rest = argv
    try:
        if command == "hold":
            hold(url, endpoint, rest[0], rest[1], float(rest[2]), rest[3] if len(rest) > 3 else "")
        elif command == "race":
            race(url, endpoint, rest[0], int(rest[1]), Path(rest[2]))
        elif command == "write-many":
            write_many(url, endpoint, rest[0], int(rest[1]), Path(rest[2]))
        else:
            raise SystemExit(f"unknown command {command}")
    except StateError as exc:
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
