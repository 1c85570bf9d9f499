"""The small object interface a shared state store is written against.

Every write is conditional: `create` refuses an existing key (If-None-Match: *),
`replace` and `delete` refuse when the object changed since it was read (If-Match on the
ETag). A lost race answers `None`/`False`, never overwrites; the caller re-reads and
decides again. `S3Objects` (the only module importing boto3) implements it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


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
