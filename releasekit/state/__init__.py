"""Where releasekit keeps its ledger and locks: a local folder by default."""

from __future__ import annotations

from releasekit.state.base import (
    Kind,
    LedgerEntry,
    LedgerReader,
    LedgerWriter,
    LockInfo,
    ModelVersion,
    Outcome,
    StateStore,
    iter_models,
)
from releasekit.state.codec import LEDGER_FORMAT, env_key
from releasekit.state.ledger import (
    Release,
    live_release_id,
    next_release_id,
    pending_switch,
    releases,
    retained_release_ids,
    rollback_target,
    successful_release_ids,
)
from releasekit.state.local import LocalStore

__all__ = [
    "LEDGER_FORMAT",
    "Kind",
    "LedgerEntry",
    "LedgerReader",
    "LedgerWriter",
    "LocalStore",
    "LockInfo",
    "ModelVersion",
    "Outcome",
    "Release",
    "StateStore",
    "env_key",
    "iter_models",
    "live_release_id",
    "next_release_id",
    "pending_switch",
    "releases",
    "retained_release_ids",
    "rollback_target",
    "successful_release_ids",
]
