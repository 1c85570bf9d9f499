"""The state store in a local folder (`.releasekit/` in the repository by default).

Layout under the root:

    ledger/<env-key>/00000001.json   one immutable document per entry (a declared environment)
    ledger/branch~<env-key>/...      a branch environment's (one an older releasekit wrote at
                                     ledger/<env-key>/ is found there, and stays there)
    ledger/<env-key>/append.lock     serialises appends to that environment
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

An entry is written to a temp file, fsynced, then hard-linked to its final name: `link`
refuses to replace an existing file, so an entry is never overwritten, and a process
killed at any moment leaves either no entry or a complete one (plus, at worst, a stray
temp file that reads ignore and the next append removes).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FunctionType
from typing import Any

from filelock import FileLock, Timeout

from releasekit.errors import StateError
from releasekit.state.base import (
    DEFAULT_LOCK_TIMEOUT,
    PLANNING_LOCK,
    PLANNING_TIMEOUT,
    STATE_AREAS,
    BranchEnvironment,
    CheckRecord,
    Claim,
    LedgerEntry,
    LedgerScan,
    LockInfo,
    UnreadableLedger,
)
from releasekit.state.codec import (
    BRANCH_LEDGER_PREFIX,
    KEEP_HINT,
    branch_from_document,
    branch_to_document,
    check_from_bytes,
    check_to_bytes,
    claim_from_document,
    claim_to_document,
    dumps,
    env_from_key,
    env_key,
    holder_from_document,
    holder_to_document,
    ledger_folder_env_key,
    legacy_branch_ledger_error,
    loads,
)
from releasekit.state.ledger import made_by_branch
from releasekit.state.locking import (
    live_holder_error,
    locked_error,
    mismatch_error,
    not_locked_error,
    process_alive,
)

_ENTRY_NAME = re.compile(r"^[0-9]{8,}\.json$")
_TEMP_PREFIX = ".tmp-"
_APPEND_LOCK = "append.lock"
DEFAULT_APPEND_TIMEOUT = 30.0  # appends hold their lock for milliseconds; waiting long is a fault


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LocalStore:
    """`StateStore` over a folder. Safe across threads and processes on one machine."""

    def __init__(
        self,
        root: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        append_timeout: float = DEFAULT_APPEND_TIMEOUT,
    ) -> None:
        self.root = Path(root)
        self._clock = clock
        self._append_timeout = append_timeout
        self._holds: dict[str, tuple[Path, LockInfo]] = {}  # env -> the lock this process holds
        self._check_root()

    def describe(self) -> str:
        return str(self.root)

    def environments(self) -> list[str]:
        ledger = self._folder("ledger")
        if not ledger.is_dir():
            return []
        names = [_env_of(folder) for folder in sorted(ledger.iterdir()) if folder.is_dir()]
        return sorted({name for name in names if name is not None})

    def entries(self, env: str) -> list[LedgerEntry]:
        folder = self._ledger_folder(env)
        if not folder.is_dir():
            return []
        return [_read_entry(folder, seq, env) for seq in _entry_seqs(folder)]

    def all_entries(self) -> dict[str, list[LedgerEntry]]:
        return {env: self.entries(env) for env in self.environments()}

    def scan_ledgers(self) -> LedgerScan:
        ledger = self._folder("ledger")
        declared: dict[str, list[LedgerEntry]] = {}
        branches: dict[str, list[LedgerEntry]] = {}
        unreadable: list[UnreadableLedger] = []
        for folder in sorted(ledger.iterdir()) if ledger.is_dir() else ():
            key, in_branches = ledger_folder_env_key(folder.name)
            try:
                env = _env_of(folder) if folder.is_dir() else None
                if env is not None:
                    entries = [_read_entry(folder, seq, env) for seq in _entry_seqs(folder)]
                    # A branch's ledger an older releasekit wrote among declared ones is a branch's.
                    (branches if in_branches or made_by_branch(entries) else declared)[env] = entries
            except StateError as exc:
                unreadable.append(UnreadableLedger(env_from_key(key), str(folder), exc.message))
        return LedgerScan(declared, tuple(unreadable), branches)

    def append(self, entry: LedgerEntry) -> LedgerEntry:
        folder = self._ledger_folder(entry.env)
        with self._appending(folder):
            return _append_locked(folder, entry)

    def _ledger_folder(self, env: str) -> Path:
        """`ledger/branch~<key>` for a branch environment (it has a registry record), else
        `ledger/<key>`. A branch ledger an older releasekit wrote at `ledger/<key>` stays
        there and is found; a declared environment never reads one as its own."""
        declared = self._folder("ledger", env_key(env))
        if self.branch(env) is None:
            if _made_by_branch(declared):
                raise legacy_branch_ledger_error(str(declared), env, str(self._branch_folder(env)))
            return declared
        branch = self._branch_folder(env)
        return declared if not branch.is_dir() and _made_by_branch(declared) else branch

    def _branch_folder(self, env: str) -> Path:
        return self._folder("ledger", BRANCH_LEDGER_PREFIX + env_key(env))

    # --- check records: checks/<sha-key>/<seq>.json and contents/<tree-key>/<seq>.json,
    # append-only like the ledger

    def record_check(self, record: CheckRecord) -> CheckRecord:
        stored = self._append_check(self._folder("checks", env_key(record.git_sha)), record)
        if record.content is not None:  # after the commit's own: an index never names a lost record
            self._append_check(self._folder("contents", env_key(record.content)), record)
        return stored

    def _append_check(self, folder: Path, record: CheckRecord) -> CheckRecord:
        with self._appending(folder):
            _remove_temp_files(folder)
            stored = replace(record, seq=len(_entry_seqs(folder)) + 1)
            _write_new(folder / _entry_name(stored.seq), check_to_bytes(stored))
            return stored

    def checks(self, git_sha: str) -> list[CheckRecord]:
        return self._read_checks(self._folder("checks", env_key(git_sha)))

    def checks_with_content(self, content: str) -> list[CheckRecord]:
        return self._read_checks(self._folder("contents", env_key(content)))

    def _read_checks(self, folder: Path) -> list[CheckRecord]:
        if not folder.is_dir():
            return []
        records = []
        for seq in _entry_seqs(folder):
            path = folder / _entry_name(seq)
            records.append(check_from_bytes(_read(path), where=str(path)))
        return records

    # --- artifacts: artifacts/<name-key>, written once

    def put_artifact(self, name: str, data: bytes) -> None:
        folder = self._folder("artifacts")
        _ensure_dir(folder)
        if not (folder / env_key(name)).exists():  # written before: same name, same content
            with contextlib.suppress(StateError):  # a racing writer of the same content won
                _write_new(folder / env_key(name), data)

    def get_artifact(self, name: str) -> bytes | None:
        path = self._folder("artifacts", env_key(name))
        return path.read_bytes() if path.is_file() else None

    def has_artifact(self, name: str) -> bool:
        return self._folder("artifacts", env_key(name)).is_file()

    # --- documents as bytes (migrate, doctor)

    def object_keys(self) -> list[str]:
        keys = []
        for area in STATE_AREAS:
            folder = self._folder(area)
            if folder.is_dir():
                keys += [
                    path.relative_to(self.root).as_posix()
                    for path in folder.rglob("*")
                    if path.is_file() and not path.name.startswith(_TEMP_PREFIX) and path.name != _APPEND_LOCK
                ]
        return sorted(keys)

    def read_object(self, key: str) -> bytes | None:
        path = self._object_path(key)
        return _read(path) if path.is_file() else None

    def create_object(self, key: str, data: bytes) -> bool:
        path = self._object_path(key)
        _ensure_dir(path.parent)
        if path.exists():
            return False
        _write_new(path, data)
        return True

    def lock_holders(self) -> list[LockInfo]:
        folder = self._folder("locks")
        if not folder.is_dir():
            return []
        holders = (_load_holder(path) for path in sorted(folder.glob("*.holder.json")))
        return [holder for holder in holders if holder is not None]

    def _object_path(self, key: str) -> Path:
        parts = key.split("/")
        if parts[0] not in STATE_AREAS or any(part in {"", ".", ".."} for part in parts):
            raise StateError(
                f"{key!r} is not a state document key", hint=f"keys start with one of {STATE_AREAS}"
            )
        return self._folder(*parts)

    @contextmanager
    def _appending(self, folder: Path) -> Iterator[None]:
        _ensure_dir(folder)
        lock = FileLock(folder / _APPEND_LOCK, timeout=max(self._append_timeout, 0.0))
        try:
            lock.acquire()
        except Timeout:
            raise StateError(
                f"could not get {lock.lock_file} within {self._append_timeout:g} s",
                hint="another releasekit process is stuck appending; check for hung processes",
            ) from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def lock(self, env: str, *, owner: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[LockInfo]:
        with self._hold(env_key(env), env, owner, timeout) as info:
            yield info

    def planning_lock(
        self, *, owner: str, timeout: float = PLANNING_TIMEOUT
    ) -> AbstractContextManager[LockInfo]:
        return self._hold(PLANNING_LOCK, PLANNING_LOCK, owner, timeout)

    @contextmanager
    def _hold(self, key: str, env: str, owner: str, timeout: float) -> Iterator[LockInfo]:
        file_lock, holder = self._lock_files(key, timeout)
        try:
            file_lock.acquire()
        except Timeout:
            raise locked_error(env, _read_holder(holder), f"lock file {file_lock.lock_file}") from None
        try:
            info = self._holder_info(env, owner)
            # Replaces any record a killed holder left: holding the file lock proves it stale.
            _write_replacing(holder, _json_bytes(holder_to_document(info)))
            self._holds[env] = (holder, info)
            try:
                yield info
            finally:
                self._holds.pop(env, None)
                # Unlink before releasing, so we never delete the next holder's record.
                holder.unlink(missing_ok=True)
        finally:
            file_lock.release()

    def claim(self, env: str, physical_schema: str, builds: Sequence[str], uses: Sequence[str]) -> None:
        """The claim rides on the lock-holder record: it goes when the lock is let go, and a
        killed holder's record (its process gone) carries a claim that is no longer live."""
        if env not in self._holds:
            raise StateError(f"a claim on {env!r} needs its lock, and this process does not hold it")
        holder, info = self._holds[env]
        document = {**holder_to_document(info), "claim": claim_to_document(physical_schema, builds, uses)}
        _write_replacing(holder, _json_bytes(document))

    def claims(self) -> list[Claim]:
        folder = self._folder("locks")
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("*.holder.json")):
            try:
                document = json.loads(path.read_bytes())
                info = holder_from_document(document, where=str(path))
            except FileNotFoundError:
                continue  # let go while we looked
            except (OSError, ValueError, StateError):
                continue  # a record that does not read carries no claim we could honour
            alive = info.host != socket.gethostname() or process_alive(info.pid)
            claim = claim_from_document(document, info, alive, where=str(path))
            if claim is not None:
                found.append(claim)
        return found

    def break_lock(self, env: str, lock_id: str) -> LockInfo:
        """The operating system frees the file lock of a process that dies, so a dead holder
        leaves only its record; the record goes only while the file lock is free and held by
        us, so a live holder's record is never removed."""
        file_lock, holder = self._lock_files(env_key(env), 0.0)
        with _acquired_if_free(file_lock) as free:
            info = _load_holder(holder)
            if info is None:
                raise not_locked_error(env, str(holder))
            if info.id != lock_id:
                raise mismatch_error(env, lock_id, info)
            if not free:
                raise live_holder_error(env, info)
            holder.unlink()
            _fsync_dir(holder.parent)
            return info

    def _lock_files(self, key: str, timeout: float) -> tuple[FileLock, Path]:
        locks = self._folder("locks")
        _ensure_dir(locks)
        # A negative filelock timeout waits forever; this lock must fail fast instead.
        return FileLock(locks / f"{key}.lock", timeout=max(timeout, 0.0)), locks / f"{key}.holder.json"

    def _holder_info(self, env: str, owner: str) -> LockInfo:
        since = self._clock().astimezone(UTC).isoformat(timespec="seconds")
        host, pid = socket.gethostname(), os.getpid()
        # A new id for every hold, so `releasekit unlock --id` can never clear a later holder's lock.
        return LockInfo(env=env, owner=owner, host=host, pid=pid, since=since, id=secrets.token_hex(6))

    # --- the registry of branch environments: registry/<env-key>.json, replaced atomically

    def branches(self) -> list[BranchEnvironment]:
        folder = self._folder("registry")
        if not folder.is_dir():
            return []
        paths = sorted(
            p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(_TEMP_PREFIX)
        )
        return sorted((_read_branch(path) for path in paths), key=lambda record: record.branch)

    def branch(self, name: str) -> BranchEnvironment | None:
        path = self._folder("registry", f"{env_key(name)}.json")
        return _read_branch(path) if path.is_file() else None

    def register(self, record: BranchEnvironment) -> None:
        folder = self._folder("registry")
        _ensure_dir(folder)
        path = folder / f"{env_key(record.branch)}.json"
        if path.is_file():
            _read_branch(path)  # never replace a record that does not read: StateError names it
        _write_replacing(path, _json_bytes(branch_to_document(record)))

    def unregister(self, name: str) -> None:
        path = self._folder("registry", f"{env_key(name)}.json")
        path.unlink(missing_ok=True)
        _remove_dead_writers_temps(path.parent)

    def _folder(self, *parts: str) -> Path:
        self._check_root()
        return self.root.joinpath(*parts)

    def _check_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StateError(
                f"the state folder {self.root} is a file",
                hint="move that file aside, or point releasekit's state path at a folder",
            )


def _made_by_branch(folder: Path) -> bool:
    first = folder / _entry_name(1)
    return first.is_file() and made_by_branch([loads(_read(first), where=str(first))])


def _env_of(folder: Path) -> str | None:
    """The environment whose entries `folder` holds, from its first entry."""
    seqs = _entry_seqs(folder)
    if not seqs:
        return None  # a first append killed before its link leaves an empty folder
    env = loads(_read(folder / _entry_name(1)), where=str(folder / _entry_name(1))).env
    if env_key(env) != ledger_folder_env_key(folder.name)[0]:
        raise StateError(f"{folder}: holds entries of environment {env!r}", hint=KEEP_HINT)
    return env


def _append_locked(folder: Path, entry: LedgerEntry) -> LedgerEntry:
    _remove_temp_files(folder)
    stored = replace(entry, seq=len(_entry_seqs(folder)) + 1)
    _write_new(folder / _entry_name(stored.seq), dumps(stored))
    return stored


def _entry_name(seq: int) -> str:
    return f"{seq:08d}.json"


def _entry_seqs(folder: Path) -> list[int]:
    """The folder's entry numbers, checked to be exactly 1..n."""
    seqs = sorted(_seq_of(folder, name) for name in _list(folder) if _ENTRY_NAME.match(name))
    for expected, seq in enumerate(seqs, start=1):
        if seq != expected:
            raise StateError(
                f"ledger folder {folder}: entry {_entry_name(expected)} is missing "
                f"(found {_entry_name(seq)} next)",
                hint="restore the missing entry from a backup; releasekit never rewrites a ledger",
            )
    return seqs


def _seq_of(folder: Path, name: str) -> int:
    seq = int(name.removesuffix(".json"))
    if name != _entry_name(seq):
        # Two spellings of one number (0001 vs 00000001) would make two entries share a seq.
        raise StateError(f"{folder / name}: not a ledger entry name", hint=KEEP_HINT)
    return seq


def _read_entry(folder: Path, seq: int, env: str) -> LedgerEntry:
    path = folder / _entry_name(seq)
    entry = loads(_read(path), where=str(path))
    if entry.seq != seq or entry.env != env:
        raise StateError(
            f"{path}: holds entry {entry.seq} of environment {entry.env!r}, expected entry {seq} of {env!r}",
            hint=KEEP_HINT,
        )
    return entry


@contextmanager
def _acquired_if_free(file_lock: FileLock) -> Iterator[bool]:
    """Hold `file_lock` for the block if nobody holds it now; say whether we got it."""
    try:
        file_lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        file_lock.release()


def _read_holder(path: Path) -> LockInfo | None:
    # Best effort: the record only improves the message; a missing one must not hide the lock.
    try:
        return _load_holder(path)
    except StateError:
        return None


def _load_holder(path: Path) -> LockInfo | None:
    """The lock-holder record, None when there is none; StateError when it is unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"could not read {path}: {exc.strerror}") from None
    hint = "if no releasekit run of this environment is going on, delete it"
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise StateError(f"{path}: unreadable lock-holder record: {exc}", hint=hint) from None
    if not isinstance(document, dict):
        raise StateError(f"{path}: not a releasekit lock-holder record", hint=hint)
    try:
        return holder_from_document(document, where=str(path))
    except StateError as exc:  # the codec's hint is for ledger documents, which are never replaced
        raise StateError(exc.message, hint=hint) from None


def _read_branch(path: Path) -> BranchEnvironment:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: unreadable registry record: {exc}", hint=KEEP_HINT) from exc
    if not isinstance(document, dict):
        raise StateError(f"{path}: not a releasekit registry record", hint=KEEP_HINT)
    return branch_from_document(document, where=str(path))


def _json_bytes(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_new(final: Path, data: bytes) -> None:
    """Create `final` with `data` atomically; fail loudly if it exists."""
    temp = _temp_path(final)
    try:
        _write_synced(temp, data)
        _link_new(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(final.parent)


def _link_new(temp: Path, final: Path) -> None:
    try:
        os.link(temp, final)  # unlike rename, link never replaces an existing file
    except FileExistsError:
        raise StateError(
            f"{final} already exists; refusing to overwrite a ledger entry",
            hint="another writer bypassed releasekit's lock; check who writes to this folder",
        ) from None
    except OSError as exc:
        raise StateError(
            f"could not create {final}: {exc.strerror}",
            hint="the state folder needs a local file system with hard links",
        ) from None


def _write_replacing(path: Path, data: bytes) -> None:
    _remove_dead_writers_temps(path.parent)
    temp = _temp_path(path)
    try:
        _write_synced(temp, data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _temp_path(final: Path) -> Path:
    return final.with_name(f"{_TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{final.name}")


_TEMP_NAME = re.compile(re.escape(_TEMP_PREFIX) + r"(?P<pid>[0-9]+)-[0-9a-f]{12}-.+")


def _remove_dead_writers_temps(folder: Path) -> None:
    """Temp files in a registry or locks folder whose writer was killed before its rename
    (no append comes to sweep them, as in ledger folders). Only dead processes' files go:
    a live writer, of any name, keeps its own, so no lock is needed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is not None and not process_alive(int(match["pid"])):
            (folder / name).unlink(missing_ok=True)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temp_files(folder: Path) -> None:
    # Called under the append lock: any temp file left is from a writer that died.
    for name in _list(folder):
        if name.startswith(_TEMP_PREFIX):
            (folder / name).unlink(missing_ok=True)


def _ensure_dir(folder: Path) -> None:
    """Create `folder` and missing parents, fsyncing each new one's parent (durable names)."""
    if folder.is_dir():
        return
    _ensure_dir(folder.parent)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"could not create the state folder {folder}: {exc.strerror}",
            hint="check that no file stands in its place and that it is writable",
        ) from None
    _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return  # Windows cannot open a directory to fsync it; NTFS journals names itself
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _list(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError as exc:
        raise StateError(f"could not list {folder}: {exc.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateError(f"could not read {path}: {exc.strerror}") from None


# --- a folder releasekit cannot write (read-only, another user's, a file in its place) ----
#
# Every public method turns an OSError into a one-line StateError naming the path and the
# fix (exit 2), and `lock` also proves the environment's ledger folder writable before it
# returns: every deploy, promotion, rollback and gc takes the lock before building or
# changing anything, so a read-only ledger stops it there, not after a build.


def _os_error(root: Path, exc: OSError) -> StateError:
    path = Path(exc.filename) if exc.filename else root
    if path.name.startswith(_TEMP_PREFIX):
        path = path.parent  # name the folder, not the temp file releasekit tried to make
    return StateError(
        f"cannot use the state folder: {path}: {exc.strerror or exc}",
        hint=f"make {root} and everything in it readable and writable by this user, or point the state "
        "elsewhere (state.path in releasekit.yml, RELEASEKIT_STATE_PATH or --state-path)",
    )


@contextmanager
def _translated(root: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _os_error(root, exc) from exc


def _probe_writable(folder: Path) -> None:
    """Create and delete a file in `folder` (a temp name: readers ignore it)."""
    _ensure_dir(folder)
    probe = _temp_path(folder / "write-probe")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    probe.unlink()


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: LocalStore, *args: Any, **kwargs: Any) -> Any:
        with _translated(self.root):
            return method(self, *args, **kwargs)

    return call


def _guarded_lock(
    method: Callable[..., AbstractContextManager[LockInfo]], *, probe: bool
) -> Callable[..., Any]:
    """A lock whose taking translates filesystem errors; an environment's lock (`probe`)
    also proves its ledger folder writable (the `ledger` folder, before its first entry),
    so a run stops before it builds, not when it records."""

    @functools.wraps(method)
    @contextmanager
    def call(self: LocalStore, *args: Any, **kwargs: Any) -> Iterator[LockInfo]:
        with contextlib.ExitStack() as stack:
            with _translated(self.root):
                info = stack.enter_context(method(self, *args, **kwargs))
                if probe:
                    folder = self._ledger_folder(args[0])
                    _probe_writable(folder if folder.exists() else folder.parent)
            yield info  # errors of the caller's block pass through untranslated

    return call


for _name, _method in list(vars(LocalStore).items()):
    if _name in ("lock", "planning_lock"):
        setattr(LocalStore, _name, _guarded_lock(_method, probe=_name == "lock"))
    elif not _name.startswith("_") and isinstance(_method, FunctionType) and _name != "describe":
        setattr(LocalStore, _name, _guarded(_method))
