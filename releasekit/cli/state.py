"""`releasekit state` (show, migrate) and `releasekit doctor`: where the state lives, moving
it between a folder and a bucket, and whether releasekit can work on it."""

from __future__ import annotations

import click

from releasekit.cli.errors import Exit, handled
from releasekit.cli.session import CONSOLE, ERR_CONSOLE, session
from releasekit.errors import EXIT_FINDINGS, EXIT_USAGE


@click.group("state")
def state() -> None:
    """The state store: release ledgers, branch environments, check records, artifacts, locks."""


@state.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Where the state lives (a folder or an s3:// URL), and what it holds."""
    with session(ctx) as (workspace, _):
        from releasekit import api
        from releasekit.reporting.state import StateReporter

        StateReporter(CONSOLE).show(api.state_show(workspace), as_json=as_json)


@state.command("migrate")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL|PATH",
    help="s3://bucket/prefix, or a folder (relative to the project's root).",
)
@click.option("--from", "source", metavar="URL|PATH", help="Default: the configured state.")
@click.option("--region", help="The bucket's region (default: the config's state.region).")
@click.option("--endpoint-url", help="An S3-compatible store's endpoint (default: state.endpoint_url).")
@click.option("--profile", help="The AWS profile for the bucket (default: state.profile).")
@click.pass_context
def migrate(
    ctx: click.Context,
    to: str,
    source: str | None,
    region: str | None,
    endpoint_url: str | None,
    profile: str | None,
) -> None:
    """Copy every state document to --to and verify the copy; the source is only read.

    Refuses (nothing copied) while a lock is held at the source, or when the destination
    holds a document with other bytes. Documents already there with the same bytes are
    skipped, so rerunning an interrupted migrate finishes it."""
    with session(ctx) as (workspace, _):
        from releasekit import api
        from releasekit.reporting.state import StateReporter

        result = api.state_migrate(
            workspace, to, source=source, region=region, endpoint_url=endpoint_url, profile=profile
        )
        StateReporter(CONSOLE).migrated(result)


@click.command("doctor")
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check that releasekit can work on this project's state.

    The config loads; the state store answers a list, refuses a second create of a probe
    (If-None-Match) and a replace with a stale ETag (If-Match), and deletes it; every
    state document parses; locks held or left behind are listed; every environment's
    warehouse serves its live release whole (marker, views, the physical relations they
    read). Changes nothing. Exit 0 when every check passes, 1 when only environments
    drifted, 2 when another check fails."""
    with handled(ERR_CONSOLE):
        from releasekit import api
        from releasekit.reporting.state import StateReporter

        overrides = {k: v for k, v in ctx.obj.items() if v is not None and k != "project_root"}
        report = api.doctor(ctx.obj["project_root"], overrides=overrides)
        StateReporter(CONSOLE).doctor(report)
        if not report.passed:
            raise Exit(EXIT_FINDINGS if report.only_findings else EXIT_USAGE)
