"""The `releasekit` command: parse options, call the API, hand the result to a reporter.

Heavy modules (the API pulls in dbt, whose import alone takes seconds) are imported
inside the commands, so `releasekit --help` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.utils import PacifyFlushWrapper

from releasekit import __version__
from releasekit.cli.check import check as check_command
from releasekit.cli.check import lint as lint_command
from releasekit.cli.ci import ci as ci_group
from releasekit.cli.env import env as env_group
from releasekit.cli.errors import Exit, handled
from releasekit.cli.hooks import hooks as hooks_group
from releasekit.cli.promote import promote as promote_command
from releasekit.cli.promote import sync as sync_command
from releasekit.cli.session import CONSOLE, ERR_CONSOLE, session, silence
from releasekit.cli.spc import spc as spc_command
from releasekit.cli.state import doctor as doctor_command
from releasekit.cli.state import state as state_group
from releasekit.errors import EXIT_FINDINGS, EXIT_OK


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
@click.argument("env", required=False)
@click.option("--var", "vars_", multiple=True, metavar="KEY=VALUE", help="Override a dbt var.")
@click.pass_context
def plan(ctx: click.Context, env: str | None, vars_: tuple[str, ...]) -> None:
    """Show what a deploy of ENV would build or reuse, and why. Changes nothing.

    ENV is a declared environment or a branch environment (by its branch name); by
    default, the current branch's environment."""
    with session(ctx, vars_) as (workspace, reporter):
        from releasekit import api

        reporter.plan(api.plan(workspace, env))


ACCEPT_HELP = (
    "Publish this model's data whatever statistical process control finds (a real change: a "
    "launch, a backfill); its history starts again here. Needs --reason."
)


def _names(values: tuple[str, ...]) -> list[str]:
    """Names given as repeated options or comma-separated, or both."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@cli.command()
@click.argument("env", required=False)
@click.option("--var", "vars_", multiple=True, metavar="KEY=VALUE", help="Override a dbt var.")
@click.option("--allow-dirty", is_flag=True, help="Deploy uncommitted changes (recorded as <sha>-dirty).")
@click.option("--force", is_flag=True, help="Deploy into a promoted environment what is not its branch head.")
@click.option("--accept", multiple=True, metavar="MODEL", help=ACCEPT_HELP)
@click.option("--reason", metavar="TEXT", help="Why --force or --accept: recorded in the ledger.")
@click.pass_context
def deploy(
    ctx: click.Context,
    env: str | None,
    vars_: tuple[str, ...],
    allow_dirty: bool,
    force: bool,
    accept: tuple[str, ...],
    reason: str | None,
) -> None:
    """Build what changed, test it, switch ENV atomically, record the release.

    An environment with promotes_from (staging, prod) takes only its branch head: use
    `releasekit promote ENV` or `releasekit sync ENV`."""
    with session(ctx, vars_) as (workspace, reporter):
        from releasekit import api

        name = workspace.environment(env).name
        with reporter.deploying(name) as on_node:
            result = api.deploy(
                workspace,
                name,
                allow_dirty=allow_dirty,
                force=force,
                reason=reason,
                accept=_names(accept),
                on_node=on_node,
                on_wait=reporter.waiting,
            )
        reporter.deploy(result)
        if not result.ok:
            raise Exit(EXIT_FINDINGS)


@cli.command()
@click.argument("env", required=False)
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    metavar="MODEL",
    help="Refresh these models (and what reads them).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be written and why; change nothing.")
@click.option("--accept", multiple=True, metavar="MODEL", help=ACCEPT_HELP)
@click.option("--reason", metavar="TEXT", help="Why --accept: recorded in the ledger.")
@click.pass_context
def refresh(
    ctx: click.Context,
    env: str | None,
    select: tuple[str, ...],
    dry_run: bool,
    accept: tuple[str, ...],
    reason: str | None,
) -> None:
    """Run ENV's live code on the data as it is now: write, audit, publish.

    Models whose sources changed get new versions beside the live ones; dbt's tests and
    the logic tests and statistical process control audit them; only then ENV switches to
    them atomically. A failed audit publishes nothing (exit 1): ENV keeps serving its
    previous data."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        name = workspace.environment(env).name
        with reporter.refreshing(name) as on_node:
            result = api.refresh(
                workspace,
                name,
                select=_names(select),
                dry_run=dry_run,
                accept=_names(accept),
                reason=reason,
                on_node=on_node,
            )
        reporter.refresh(result)
        if not result.ok:
            raise Exit(EXIT_FINDINGS)


@cli.command()
@click.argument("env", required=False)
@click.option("--to", "to", type=int, metavar="RELEASE", help="Release id (default: the one before).")
@click.pass_context
def rollback(ctx: click.Context, env: str | None, to: int | None) -> None:
    """Switch ENV back to a retained earlier release. Builds nothing."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.rollback(api.rollback(workspace, env, to=to))


@cli.command()
@click.argument("env", required=False)
@click.pass_context
def releases(ctx: click.Context, env: str | None) -> None:
    """List ENV's ledger: every deploy and rollback, with its outcome."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        name = workspace.environment(env).name
        reporter.releases(name, api.releases(workspace, name))


@cli.command()
@click.argument("env")
@click.option("--id", "lock_id", required=True, metavar="LOCK_ID", help="The id the locked run printed.")
@click.pass_context
def unlock(ctx: click.Context, env: str, lock_id: str) -> None:
    """Clear ENV's lock left by a run that died. Refuses a wrong id or a live holder."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.unlocked(api.unlock(workspace, env, lock_id))


@cli.command()
@click.argument("env", required=False)
@click.pass_context
def status(ctx: click.Context, env: str | None) -> None:
    """Show every environment's live release and whether the warehouse agrees.

    Declared and branch environments; the warehouse agrees when the marker names the live
    release, every view is there and reads it, and every physical relation they read
    exists. With ENV, also each of its models: the data version it serves and its age.
    Exit 1 when a warehouse drifted (`releasekit deploy ENV` repairs it)."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        name = workspace.environment(env).name if env else None
        statuses = api.status(workspace)
        reporter.status(statuses)
        for found in statuses:
            if found.env == name:
                reporter.data_versions(found)
        if any(s.drift for s in statuses):
            raise Exit(EXIT_FINDINGS)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be dropped; drop nothing.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Drop physical relations no retained release uses, and dbt leftovers."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.gc(api.gc(workspace, dry_run=dry_run))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), default="releasekit-demo")
def quickstart(directory: Path) -> None:
    """Create a demo repository in DIRECTORY and walk the whole release flow."""
    with handled(ERR_CONSOLE):
        from releasekit.quickstart.flow import run_quickstart
        from releasekit.reporting.terminal import TerminalReporter

        run_quickstart(directory, TerminalReporter(CONSOLE))


cli.add_command(check_command)
cli.add_command(lint_command)
cli.add_command(promote_command)
cli.add_command(sync_command)
cli.add_command(env_group)
cli.add_command(hooks_group)
cli.add_command(state_group)
cli.add_command(doctor_command)
cli.add_command(ci_group)
cli.add_command(spc_command)


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
    except SystemExit as exc:  # click's answer to a closed pipe under --help or --version
        if isinstance(sys.stdout, PacifyFlushWrapper):
            silence(sys.stdout)
            return EXIT_OK
        raise exc
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
