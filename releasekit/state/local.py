"""The state store in a local folder (`.releasekit/` in the repository by default).

The documents are the store's (`store.py`), kept as files under the root (`folder.py`); runs
exclude each other with file locks (`locks.py`):

    ledger/<env-key>/00000001.json   one immutable document per entry (a declared environment)
    ledger/branch~<env-key>/...      a branch environment's
    locks/<env-key>.lock             the environment's run lock (held for a whole deploy)
    locks/<env-key>.holder.json      who holds the run lock, while it is held (left behind by a
                                     holder that was killed; the next holder replaces it), and
                                     the relations its run claims (`claim`)
    locks/~planning.lock             held while a deploy plans and claims, or gc decides
    registry/<env-key>.json          a branch environment's record, replaced atomically
    checks/<sha-key>/00000001.json   one immutable document per `releasekit check` of a commit
    contents/<tree-key>/00000001.json  the same records again, by the content they verified
                                     (the dbt project's git tree id), for promotion gates
    artifacts/<name-key>             files releases leave for later runs (parsed graphs)
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path

from releasekit.errors import StateError
from releasekit.state.base import BranchEnvironment
from releasekit.state.folder import FolderObjects, write_new
from releasekit.state.locks import FileLocks
from releasekit.state.probes import Check, probe_folder
from releasekit.state.store import DocumentStore


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LocalStore(DocumentStore):
    """`StateStore` over a folder. Safe across threads and processes on one machine."""

    def __init__(self, root: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        objects = FolderObjects(root)
        super().__init__(objects, FileLocks(objects.root, objects.translated, clock))
        self.root = objects.root
        self._folder = objects

    def register(self, record: BranchEnvironment) -> None:
        # A record written again unchanged writes nothing: sweep what killed writers left here anyway.
        self._folder.sweep("registry/")
        super().register(record)

    def check_writable(self, env: str) -> None:
        self._folder.check_writable(self._ledger_folder(env))

    def probe(self) -> Generator[Check, None, None]:
        return probe_folder(self.root)


def _write_new(final: Path, data: bytes) -> None:
    """Create `final` with `data`; StateError, never an overwrite, when it exists."""
    try:
        write_new(final, data)
    except FileExistsError:
        raise StateError(
            f"{final} already exists; refusing to overwrite a ledger entry",
            hint="another writer bypassed releasekit's lock; check who writes to this folder",
        ) from None
