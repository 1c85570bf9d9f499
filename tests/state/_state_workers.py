"""Child processes for the state tests: real processes that append and hold locks.

Run as `python _state_workers.py <command> <root> <env> [...]` with the checkout on
PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from _state_factories import make_entry

from releasekit.state.local import LocalStore


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
    with LocalStore(root).lock(env, owner=owner):
        print("locked", flush=True)
        time.sleep(60)


def main(argv: list[str]) -> None:
    command, root, env, *rest = argv
    if command == "append-many":
        append_many(Path(root), env, int(rest[0]), Path(rest[1]))
    elif command == "append-forever":
        append_forever(Path(root), env)
    elif command == "hold-lock":
        hold_lock(Path(root), env, rest[0])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
