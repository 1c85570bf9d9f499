"""`releasekit env`: branch environments (up, down, list, gc)."""

from __future__ import annotations

import click

from releasekit.cli.session import CONSOLE, session


@click.group("env")
def env() -> None:
    """Branch environments: a schema per branch, views onto the base's release, no data copied."""


@env.command("up")
@click.argument("branch", required=False)
@click.option("--pin", is_flag=True, help="Keep it past its expiry (env gc leaves it alone).")
@click.option("--rebase", is_flag=True, help="Move it onto the base's current release and data.")
@click.pass_context
def up(ctx: click.Context, branch: str | None, pin: bool, rebase: bool) -> None:
    """Bring up BRANCH's environment (default: the current branch's). Harmless to repeat.

    A branch environment holds its data still while its code changes; --rebase moves one
    that is up onto its base's current release and data (after `releasekit refresh` of the
    base); the next deploy or check builds the branch's changes on it."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        up = api.env_up(workspace, branch, pin=pin, on_wait=reporter.waiting, rebase=rebase)
        reporter.env_up(up)


@env.command("down")
@click.argument("branch", required=False)
@click.option("--missing-ok", is_flag=True, help="No environment to drop is no error (a PR closed early).")
@click.pass_context
def down(ctx: click.Context, branch: str | None, missing_ok: bool) -> None:
    """Drop BRANCH's environment (default: the current branch's). Never a declared one."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        drop = api.env_down_if_up if missing_ok else api.env_down
        result = drop(workspace, branch, on_wait=reporter.waiting)
        if result is None:
            CONSOLE.print(f"{branch or 'this branch'}: no branch environment, nothing to drop.", markup=False)
        else:
            reporter.env_down(result)


@env.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """Every branch environment: branch, schema, base and release, age, expiry."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.env_list(api.env_list(workspace))


@env.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be dropped; drop nothing.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Drop branch environments whose branch is gone or whose expiry passed (unless pinned)."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api

        reporter.env_gc(api.env_gc(workspace, dry_run=dry_run), dry_run)
