"""One handler turns every outcome into a fixed exit code and a message that names the fix."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from releasekit.config.secrets import redact_urls
from releasekit.errors import EXIT_BUG, EXIT_INTERRUPTED, ReleasekitError


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
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise Exit(EXIT_INTERRUPTED) from None
    except Exception:
        log = _write_crash_log()
        console.print(
            f"[bold red]releasekit hit a bug.[/] The traceback is in {log}; please attach it to an issue.",
            highlight=False,
        )
        raise Exit(EXIT_BUG) from None


def _write_crash_log(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path:
    folder = Path(tempfile.gettempdir()) / "releasekit"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{now():%Y%m%dT%H%M%S}.log"
    path.write_text(traceback.format_exc(), encoding="utf-8")
    return path
