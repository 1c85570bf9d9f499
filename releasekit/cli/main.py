"""The `releasekit` command: parse options, call the API, hand the result to a reporter.

Heavy modules (the API pulls in dbt, whose import alone takes seconds) are imported
inside the commands, so `releasekit --help` answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from releasekit import __version__
from releasekit.cli.errors import Exit, handled
from releasekit.errors import EXIT_FINDINGS, EXIT_OK, ConfigError

if TYPE_CHECKING:
    from releasekit.api import Workspace
    from releasekit.reporting.terminal import TerminalReporter

# Piped output (CI logs) gets room for tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 120
CONSOLE = Console(highlight=False, width=_WIDTH)
ERR_CONSOLE = Console(stderr=True, highlight=False, width=_WIDTH)


@contextmanager
def _session(ctx: click.Context, vars_: tuple[str, ...] = ()) -> Iterator[tuple[Workspace, TerminalReporter]]:
    with handled(ERR_CONSOLE):
        from releasekit.api import Workspace
        from releasekit.reporting.terminal import TerminalReporter

        overrides = {k: v for k, v in ctx.obj.items() if v is not None and k != "project_root"}
        if vars_:
            overrides["vars"] = _parse_vars(vars_)
        yield Workspace.open(ctx.obj.get("project_root"), overrides=overrides), TerminalReporter(CONSOLE)


def _parse_vars(values: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var {item!r} is not KEY=VALUE", hint="for example: --var region=eu")
        parsed[key] = yaml.safe_load(raw) if raw else ""
    return parsed


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="releasekit")
@click.option("-C", "project_root", type=click.Path(path_type=Path), help="Run as if started in this folder.")
@click.option("--state-path", type=click.Path(path_type=Path), help="State folder (default .releasekit/).")
@click.pass_context
def cli(ctx: click.Context, project_root: Path | None, state_path: Path | None) -> None:
    """GitOps releases for dbt: fingerprinted builds, atomic switches, rollback.

    \b
    Start with `releasekit quickstart DIR` for a guided demo, or `releasekit init`
    inside a git repository that holds a dbt project.
    """
    ctx.obj = {"project_root": project_root, "state_path": state_path}


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite existing releasekit files.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Add releasekit to the dbt project in this git repository."""
    with handled(ERR_CONSOLE):
        from releasekit import api
        from releasekit.reporting.terminal import TerminalReporter

        TerminalReporter(CONSOLE).init(api.init(ctx.obj["project_root"], force=force))


@cli.command()
@click.argument("env")
@click.option("--var", "vars_", multiple=True, metavar="KEY=VALUE", help="Override a dbt var.")
@click.pass_context
def plan(ctx: click.Context, env: str, vars_: tuple[str, ...]) -> None:
    """Show what a deploy of ENV would build or reuse, and why. Changes nothing."""
    with _session(ctx, vars_) as (workspace, reporter):
        from releasekit import api

        reporter.plan(api.plan(workspace, env))


@cli.command()
@click.argument("env")
@click.option("--var", "vars_", multiple=True, metavar="KEY=VALUE", help="Override a dbt var.")
@click.option("--allow-dirty", is_flag=True, help="Deploy uncommitted changes (recorded as <sha>-dirty).")
@click.pass_context
def deploy(ctx: click.Context, env: str, vars_: tuple[str, ...], allow_dirty: bool) -> None:
    """Build what changed, test it, switch ENV atomically, record the release."""
    with _session(ctx, vars_) as (workspace, reporter):
        from releasekit import api

        with reporter.deploying(env) as on_node:
            result = api.deploy(workspace, env, allow_dirty=allow_dirty, on_node=on_node)
        reporter.deploy(result)
        if not result.ok:
            raise Exit(EXIT_FINDINGS)


@cli.command()
@click.argument("env")
@click.option("--to", "to", type=int, metavar="RELEASE", help="Release id (default: the one before).")
@click.pass_context
def rollback(ctx: click.Context, env: str, to: int | None) -> None:
    """Switch ENV back to a retained earlier release. Builds nothing."""
    with _session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.rollback(api.rollback(workspace, env, to=to))


@cli.command()
@click.argument("env")
@click.pass_context
def releases(ctx: click.Context, env: str) -> None:
    """List ENV's ledger: every deploy and rollback, with its outcome."""
    with _session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.releases(env, api.releases(workspace, env))


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show every environment's live release and whether the warehouse agrees."""
    with _session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.status(api.status(workspace))


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be dropped; drop nothing.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Drop physical relations no retained release uses, and dbt leftovers."""
    with _session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.gc(api.gc(workspace, dry_run=dry_run))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), default="releasekit-demo")
def quickstart(directory: Path) -> None:
    """Create a demo repository in DIRECTORY and walk the whole release flow."""
    with handled(ERR_CONSOLE):
        from releasekit.quickstart.flow import run_quickstart
        from releasekit.reporting.terminal import TerminalReporter

        reporter = TerminalReporter(CONSOLE)
        reporter.quickstart_done(run_quickstart(directory, reporter))


def main(argv: list[str] | None = None) -> int:
    try:
        code = cli.main(args=argv, prog_name="releasekit", standalone_mode=False)
    except Exit as exc:
        return exc.code
    except click.exceptions.Abort:
        ERR_CONSOLE.print("[yellow]interrupted[/]")
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
