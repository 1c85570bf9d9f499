"""One handler turns every outcome into a fixed exit code and a message that names the fix."""

from __future__ import annotations

import errno
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from releasekit.config.secrets import redact_urls
from releasekit.errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE, ReleasekitError


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@contextmanager
def handled(console: Console) -> Iterator[None]:
    try:
        yield
    except Exit:
        raise
    except ReleasekitError as exc:
        console.print(f"[bold red]error:[/] {redact_urls(exc.message)}", highlight=False)
        if exc.hint:
            console.print(f"  [yellow]hint:[/] {redact_urls(exc.hint)}", highlight=False)
        raise Exit(exc.exit_code) from None
    except OSError as exc:
        if exc.errno not in _SETUP_ERRNOS:
            raise _bug(console) from None
        # A path releasekit cannot write or read (permissions, read-only, full disk): setup.
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(f"[bold red]error:[/] {escape(where + (exc.strerror or str(exc)))}", highlight=False)
        console.print("  [yellow]hint:[/] check that path's permissions and free space", highlight=False)
        raise Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise Exit(EXIT_INTERRUPTED) from None
    except Exception:
        raise _bug(console) from None


_SETUP_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}
)


def _bug(console: Console) -> Exit:
    log = _write_crash_log()
    console.print(
        f"[bold red]releasekit hit a bug.[/] The traceback is in {log}; please attach it to an issue.",
        highlight=False,
    )
    return Exit(EXIT_BUG)


def _write_crash_log(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path:
    folder = Path(tempfile.gettempdir()) / "releasekit"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{now():%Y%m%dT%H%M%S}.log"
    path.write_text(redact_urls(traceback.format_exc()), encoding="utf-8")
    return path
