"""Child processes for the state tests: real processes that append and hold locks.

Run as `python _state_workers.py <command> <root> <env> [...]` with the checkout on
PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from releasekit.errors import LockedError
from releasekit.state.local import LocalStore
from tests.support.state_factories import make_entry

GIVE_UP_SECONDS = 60.0  # a child whose test died stops waiting and exits


def append_many(root: Path, env: str, count: int, go: Path) -> None:
    # Wait for the start signal so every process appends at the same time.
    while not go.exists():
        time.sleep(0.002)
    store = LocalStore(root)
    for n in range(count):
        store.append(make_entry(env=env, release_id=n + 1, note=f"{os.getpid()}:{n}"))


def append_forever(root: Path, env: str) -> None:
    store = LocalStore(root)
    n = 0
    while True:
        n += 1
        store.append(make_entry(env=env, release_id=n, note=f"{os.getpid()}:{n}"))


def hold_lock(root: Path, env: str, owner: str) -> None:
    with LocalStore(root).lock(env, owner=owner) as info:
        print(f"locked {info.id}", flush=True)
        time.sleep(GIVE_UP_SECONDS)


def race(root: Path, env: str, rounds: int, signals: Path) -> None:
    """Promote once per round, as promotion will: take the lock without waiting, read the
    ledger, append the next release. The winner holds the lock until the test has heard
    from every racer, so a loser cannot slip in after it and win the same round."""
    store, me = LocalStore(root), os.getpid()
    for n in range(rounds):
        wait_for(signals / f"go-{n}")
        try:
            with store.lock(env, owner=f"promoter {me}", timeout=0) as info:
                release_id = len(store.entries(env)) + 1
                store.append(make_entry(env=env, release_id=release_id, note=f"{n}:{me}:{info.id}"))
                (signals / f"{n}-{me}.won").touch()
                wait_for(signals / f"release-{n}")
            (signals / f"free-{n}").touch()
        except LockedError:
            (signals / f"{n}-{me}.lost").touch()


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {path}")
        time.sleep(0.003)


def main(argv: list[str]) -> None:
    command, root, env, *rest = argv
    if command == "append-many":
        append_many(Path(root), env, int(rest[0]), Path(rest[1]))
    elif command == "append-forever":
        append_forever(Path(root), env)
    elif command == "hold-lock":
        hold_lock(Path(root), env, rest[0])
    elif command == "race":
        race(Path(root), env, int(rest[0]), Path(rest[1]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
