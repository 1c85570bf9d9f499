"""What every state store says about its environment locks, in the same words."""

from __future__ import annotations

import shlex

from releasekit.errors import LockedError, LockMismatchError, NotFoundError
from releasekit.processes import process_alive as process_alive  # its stores import it from here
from releasekit.state.base import PLANNING_LOCK, LockInfo


def locked_error(env: str, holder: LockInfo | None, where: str) -> LockedError:
    if env == PLANNING_LOCK:
        who = holder_words(holder) if holder else "another process"
        return LockedError(
            f"another releasekit run has been deciding what to build or drop for too long: {who}; {where}",
            hint="wait for that run to finish, then retry; a run that died lets go of it by itself "
            "(a bucket's lease expires after lock_ttl_seconds)",
        )
    if holder is None:
        return LockedError(
            f"environment {env!r} is locked by another process (it has not recorded who it is yet); {where}",
            hint="wait for that run to finish, then retry",
        )
    return LockedError(
        f"environment {env!r} is locked by {holder_words(holder)}, lock id {holder.id}; {where}",
        hint="wait for that run to finish, then retry; if that process is gone, clear its lock "
        f"with: releasekit unlock {shlex.quote(env)} --id {holder.id}",
    )


def not_locked_error(env: str, where: str) -> NotFoundError:
    return NotFoundError(
        f"environment {env!r} is not locked: no lock holder is recorded in {where}",
        hint="nothing to clear; a run refused for a held lock names the id to pass",
    )


def mismatch_error(env: str, lock_id: str, holder: LockInfo) -> LockMismatchError:
    return LockMismatchError(
        f"lock id {lock_id!r} is not {env!r}'s lock: it is held under id {holder.id!r} "
        f"by {holder_words(holder)}",
        hint="the lock changed hands since that id was printed, or the id is mistyped; make sure "
        "that holder is gone before clearing its lock with its id",
    )


def live_holder_error(env: str, holder: LockInfo, detail: str = "") -> LockedError:
    return LockedError(
        f"environment {env!r} is locked by a live process: pid {holder.pid} on host {holder.host} "
        f"({holder.owner}, since {holder.since}, lock id {holder.id}){detail}",
        hint="wait for it to finish, or stop it; `releasekit unlock` clears only a lock whose holder is gone",
    )


def holder_words(holder: LockInfo) -> str:
    return f"{holder.owner} (pid {holder.pid} on {holder.host}) since {holder.since}"
