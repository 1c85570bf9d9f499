"""The object-store seam over a local folder: a key is a path under the root.

- `create` writes a temp file, fsyncs it, then hard-links it to its final name: `link`
  refuses to replace an existing file, so a document is never overwritten, and a process
  killed at any moment leaves either no document or a complete one (plus, at worst, a
  stray temp file that listings ignore and the next create in that folder removes).
- A document's version tag is the SHA-256 of its bytes. `replace` and `delete` compare it
  under a file lock on the folder (`replace.lock`), then rename over or unlink.
- Every filesystem error becomes a one-line StateError naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from releasekit.errors import StateError
from releasekit.state.locking import process_alive
from releasekit.state.objects import Stored

TEMP_PREFIX = ".tmp-"
APPEND_LOCK = "append.lock"  # what an older releasekit serialised appends with; never a document
REPLACE_LOCK = "replace.lock"  # serialises compare-and-swap in a folder
NOT_DOCUMENTS = frozenset({APPEND_LOCK, REPLACE_LOCK})
REPLACE_TIMEOUT = 30.0  # a compare-and-swap holds its lock for milliseconds; waiting long is a fault
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(?P<pid>[0-9]+)-.+")


class FolderObjects:
    """`ObjectStore` over a folder. Safe across threads and processes on one machine."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        self.check_root()

    def describe(self, key: str = "") -> str:
        return os.path.join(self._root, *key.strip("/").split("/")) if key.strip("/") else self._root

    def get(self, key: str) -> Stored | None:
        path = self._file(key)
        with self.translated():
            try:
                with open(path, "rb") as file:
                    data, modified = file.read(), os.fstat(file.fileno()).st_mtime
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                self.check_root()  # a root that became a file says so; else it is not there
                return None
        return Stored(data, _tag(data), datetime.fromtimestamp(modified, UTC))

    def exists(self, key: str) -> bool:
        self.check_root()
        return self.path(key).is_file()

    def create(self, key: str, data: bytes) -> str | None:
        self.check_root()
        path = self.path(key)
        with self.translated():
            ensure_dir(path.parent)
            remove_dead_writers_temps(path.parent)
            try:
                write_new(path, data)
            except FileExistsError:
                return None
        return _tag(data)

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        self.check_root()
        path = self.path(key)
        with self.translated(), self._swapping(path.parent):
            current = self.get(key)
            if current is None or current.etag != etag:
                return None
            write_replacing(path, data)
        return _tag(data)

    def delete(self, key: str, etag: str | None = None) -> bool:
        self.check_root()
        path = self.path(key)
        with self.translated(), self._swapping(path.parent):
            if etag is not None:
                current = self.get(key)
                if current is not None and current.etag != etag:
                    return False
            path.unlink(missing_ok=True)
            remove_dead_writers_temps(path.parent)
        return True

    def keys(self, prefix: str) -> list[str]:
        """Every document under `prefix` (a folder, ending in `/`), sorted; temp files and
        the folders' own lock files are not documents."""
        self.check_root()
        folder = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        start = f"{prefix.rstrip('/')}/" if prefix.strip("/") else ""
        with self.translated():
            try:
                return sorted(_documents_in(folder, start))
            except (FileNotFoundError, NotADirectoryError):
                return []

    def now(self) -> datetime:
        return datetime.now(UTC)

    def path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        """`key`'s path under the root, as a string (reads of many small documents are
        dominated by path objects otherwise); a key that could leave the root is refused."""
        if key.startswith("/") or "/./" in f"/{key}/" or "/../" in f"/{key}/":
            raise StateError(f"{key!r} is not a state document key")
        return os.path.join(self._root, *key.split("/"))

    def check_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StateError(
                f"the state folder {self.root} is a file",
                hint="move that file aside, or point releasekit's state path at a folder",
            )

    def sweep(self, prefix: str) -> None:
        """Remove the temp files dead writers left in the folder `prefix` names."""
        remove_dead_writers_temps(self.path(prefix.rstrip("/")))

    def check_writable(self, key: str) -> None:
        """Create and delete a file in the folder of `key` (its nearest existing one): what
        a run proves before it builds, so a read-only state stops it there, not when it
        records. A temp name: listings ignore it."""
        self.check_root()
        folder = self.path(key.rstrip("/"))
        with self.translated():
            folder = folder if folder.exists() else folder.parent
            ensure_dir(folder)
            probe = temp_path(folder / "write-probe")
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            probe.unlink()

    @contextmanager
    def translated(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise os_error(self.root, exc) from exc

    @contextmanager
    def _swapping(self, folder: Path) -> Iterator[None]:
        ensure_dir(folder)
        lock = FileLock(folder / REPLACE_LOCK, timeout=REPLACE_TIMEOUT)
        try:
            lock.acquire()
        except Timeout:
            raise StateError(
                f"could not get {lock.lock_file} within {REPLACE_TIMEOUT:g} s",
                hint="another releasekit process is stuck writing the state; check for hung processes",
            ) from None
        try:
            yield
        finally:
            lock.release()


def _documents_in(folder: Path, key_prefix: str) -> Iterator[str]:
    """The keys of the documents under `folder` (temp files and lock files are not)."""
    with os.scandir(folder) as found:
        for entry in found:
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _documents_in(Path(entry.path), f"{key_prefix}{name}/")
            elif name not in NOT_DOCUMENTS and not name.startswith(TEMP_PREFIX) and entry.is_file():
                yield key_prefix + name


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def os_error(root: Path, exc: OSError) -> StateError:
    """A filesystem error as one line naming the path and the fix (exit 2)."""
    path = Path(exc.filename) if exc.filename else root
    if path.name.startswith(TEMP_PREFIX):
        path = path.parent  # name the folder, not the temp file releasekit tried to make
    return StateError(
        f"cannot use the state folder: {path}: {exc.strerror or exc}",
        hint=f"make {root} and everything in it readable and writable by this user, or point the state "
        "elsewhere (state.path in releasekit.yml, RELEASEKIT_STATE_PATH or --state-path)",
    )


def write_new(final: Path, data: bytes) -> None:
    """Create `final` with `data` atomically; FileExistsError if it exists (never replaced)."""
    temp = temp_path(final)
    try:
        _write_synced(temp, data)
        try:
            os.link(temp, final)  # unlike rename, link never replaces an existing file
        except FileExistsError:
            raise
        except OSError as exc:
            raise StateError(
                f"could not create {final}: {exc.strerror}",
                hint="the state folder needs a local file system with hard links",
            ) from None
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(final.parent)


def write_replacing(path: Path, data: bytes) -> None:
    """Write `path` atomically, replacing what is there (a temp file renamed over it)."""
    remove_dead_writers_temps(path.parent)
    temp = temp_path(path)
    try:
        _write_synced(temp, data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def temp_path(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{final.name}")


def remove_dead_writers_temps(folder: Path) -> None:
    """Temp files whose writer was killed before its link or rename. Only dead processes'
    files go: a live writer keeps its own, so no lock is needed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is not None and not process_alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                (folder / name).unlink(missing_ok=True)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(folder: Path) -> None:
    """Create `folder` and missing parents, fsyncing each new one's parent (durable names)."""
    if folder.is_dir():
        return
    ensure_dir(folder.parent)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"could not create the state folder {folder}: {exc.strerror}",
            hint="check that no file stands in its place and that it is writable",
        ) from None
    fsync_dir(folder.parent)


def fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return  # Windows cannot open a directory to fsync it; NTFS journals names itself
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
