"""What every command shares: the consoles, and a session that opens the workspace and
turns every error into its exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from releasekit.cli.errors import handled
from releasekit.errors import ConfigError

if TYPE_CHECKING:
    from releasekit.api import Workspace
    from releasekit.reporting.terminal import TerminalReporter


class PipeConsole(Console):
    """A console whose reader may go away (`releasekit plan dev | head -1`). A closed pipe
    is not an error: the console goes quiet and the command carries on (a deploy is not
    cut short because its reader left) and exits with its own code. rich's default exits 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence(self.file)


def silence(stream: object) -> None:
    """Point a closed stream's file descriptor at /dev/null, so no later write or the
    interpreter's final flush fails on it."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        fileno = stream.fileno()  # type: ignore[attr-defined]
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fileno)
        os.close(devnull)


# Piped output (CI logs) gets room for tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 120
CONSOLE = PipeConsole(highlight=False, width=_WIDTH)
ERR_CONSOLE = PipeConsole(stderr=True, highlight=False, width=_WIDTH)


@contextmanager
def session(ctx: click.Context, vars_: tuple[str, ...] = ()) -> Iterator[tuple[Workspace, TerminalReporter]]:
    with handled(ERR_CONSOLE):
        from releasekit.api import Workspace
        from releasekit.reporting.terminal import TerminalReporter

        overrides = {k: v for k, v in ctx.obj.items() if v is not None and k != "project_root"}
        if vars_:
            overrides["vars"] = parse_vars(vars_)
        yield Workspace.open(ctx.obj.get("project_root"), overrides=overrides), TerminalReporter(CONSOLE)


def parse_vars(values: tuple[str, ...]) -> dict[str, Any]:
    from releasekit.config.safe_yaml import load_yaml

    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var {item!r} is not KEY=VALUE", hint="for example: --var region=eu")
        parsed[key] = load_yaml(raw) if raw else ""
    return parsed
