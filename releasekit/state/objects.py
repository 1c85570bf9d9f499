"""The small object interface a shared state store is written against.

Every write is conditional: `create` refuses an existing key (If-None-Match: *),
`replace` and `delete` refuse when the object changed since it was read (If-Match on the
ETag). A lost race answers `None`/`False`, never overwrites; the caller re-reads and
decides again. `S3Objects` (the only module importing boto3) implements it over a bucket,
`FolderObjects` over a local folder; `DocumentStore` writes every document through it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from releasekit.errors import StateError

WRITE_BUDGET = 60.0  # seconds a write keeps retrying lost races before it gives up


@dataclass(frozen=True)
class Stored:
    """One object as read: its bytes, its ETag, and when the store last wrote it (the
    store's own clock, so lock expiry never depends on the reader's clock)."""

    data: bytes
    etag: str
    modified: datetime


class ObjectStore(Protocol):
    def describe(self, key: str = "") -> str:
        """The URL of `key` (or of the store's root), for messages."""
        ...

    def get(self, key: str) -> Stored | None: ...

    def exists(self, key: str) -> bool: ...

    def create(self, key: str, data: bytes) -> str | None:
        """Write `key` only if it does not exist; its ETag, or None when it exists."""
        ...

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        """Write `key` only if its ETag is still `etag`; the new ETag, or None when it changed
        or is gone."""
        ...

    def delete(self, key: str, etag: str | None = None) -> bool:
        """Remove `key` (only if its ETag is still `etag`, when given); False when it changed.
        Removing a missing key is not an error."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (relative to the store's root), sorted."""
        ...

    def now(self) -> datetime:
        """The store's clock, as last seen in its answers (the local clock before any)."""
        ...


class Attempt:
    def __init__(self) -> None:
        self.pause = 0.02

    def lost(self) -> None:
        """A lost race: wait a jittered, growing moment so racers spread out."""
        time.sleep(random.uniform(0, self.pause))
        self.pause = min(self.pause * 2, 1.0)


def attempts(what: str) -> Iterator[Attempt]:
    """Tries of a conditional write, until one wins or WRITE_BUDGET runs out (StateError)."""
    attempt, deadline, tries = Attempt(), time.monotonic() + WRITE_BUDGET, 0
    while time.monotonic() < deadline:
        tries += 1
        yield attempt
    raise StateError(
        f"could not {what}: other writers kept changing it ({tries} tries in {WRITE_BUDGET:g} s)",
        hint="something writes to the state store in a tight loop; find it, then rerun",
    )


def read_all(objects: ObjectStore, keys: list[str], readers: int = 16) -> list[Stored | None]:
    """`keys` read `readers` at a time (a bucket answers each in milliseconds; a folder
    gains nothing from threads)."""
    if len(keys) <= 1 or readers <= 1:
        return [objects.get(key) for key in keys]
    with ThreadPoolExecutor(min(readers, len(keys))) as pool:
        return list(pool.map(objects.get, keys))
