"""The state store over a shared object store (S3): what many CI runners and people use
at once, so every write is conditional (`store.py`) and every lock is a lease with a
heartbeat and fencing (`locks.py`). The keys are the local folder's paths."""

from __future__ import annotations

from releasekit.state.codec import env_key
from releasekit.state.locks import DEFAULT_LOCK_TTL, LEASE_FORMAT, LeaseLocks, parse_lease
from releasekit.state.objects import ObjectStore
from releasekit.state.store import DocumentStore

__all__ = ["DEFAULT_LOCK_TTL", "LEASE_FORMAT", "ObjectStateStore", "parse_lease"]

_READERS = 16  # a bucket answers each read in milliseconds: read many at once


class ObjectStateStore(DocumentStore):
    """`StateStore` over an `ObjectStore`. Safe across threads, processes and machines."""

    def __init__(self, objects: ObjectStore, *, lock_ttl: float = DEFAULT_LOCK_TTL) -> None:
        self.leases = LeaseLocks(objects, lock_ttl)
        super().__init__(objects, self.leases, readers=_READERS, remember=True)
        self.lock_ttl = lock_ttl

    def lease_age(self, env: str) -> tuple[float, float] | None:
        """(seconds since the lease on `env` was renewed, its time to live); None: no lease."""
        return self.leases.lease_age(env_key(env))
