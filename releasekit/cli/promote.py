"""`releasekit promote` and `releasekit sync`: move tested releases along the environments."""

from __future__ import annotations

import click

from releasekit.cli.errors import Exit
from releasekit.cli.session import CONSOLE, session
from releasekit.errors import EXIT_FINDINGS, PromotionRefused


@click.command("promote")
@click.argument("dst")
@click.option("--from", "src", metavar="ENV", help="The source (default: DST's promotes_from).")
@click.option("--approve", "approvals", multiple=True, metavar="NAME", help="An approver (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show the gates, the branch move and the plan; change nothing.")
@click.option("--no-push", is_flag=True, help="Do not push the branch and tag to the remote.")
@click.option("--force", is_flag=True, help="Promote into a drifted environment (needs --reason).")
@click.option("--reason", metavar="TEXT", help="Why --force: recorded in the ledger.")
@click.pass_context
def promote(
    ctx: click.Context,
    dst: str,
    src: str | None,
    approvals: tuple[str, ...],
    dry_run: bool,
    no_push: bool,
    force: bool,
    reason: str | None,
) -> None:
    """Promote the release SRC serves into DST: gates, DST's branch moves to that exact
    commit, DST deploys it (reusing SRC's tables where fingerprints agree) and switches.

    A gate that says no changes nothing and exits 1, saying why; with --dry-run, the gates
    (the failing ones among them) and the plan are shown first."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api
        from releasekit.reporting.promotion import PromotionReporter

        with reporter.deploying(dst) as on_node:
            result = api.promote(
                workspace,
                dst,
                src=src,
                approvals=approvals,
                dry_run=dry_run,
                push=not no_push,
                force=force,
                reason=reason,
                on_node=on_node,
            )
        if result.refused and not dry_run:
            raise PromotionRefused(result.refusal)
        PromotionReporter(CONSOLE).promote(result)
        if result.refused:
            raise PromotionRefused(result.refusal)
        if result.deployed is not None and not result.deployed.ok:
            raise Exit(EXIT_FINDINGS)


@click.command("sync")
@click.argument("env")
@click.option("--force", is_flag=True, help="Deploy the branch head even though a rollback holds ENV.")
@click.pass_context
def sync(ctx: click.Context, env: str, force: bool) -> None:
    """Deploy ENV's branch head if ENV serves another commit (GitOps reconcile).

    After `releasekit rollback ENV`, ENV is held: sync leaves it alone until its branch
    brings a dbt project other than the one rolled back from (or --force)."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api
        from releasekit.reporting.promotion import PromotionReporter

        with reporter.deploying(env) as on_node:
            result = api.sync(workspace, env, force=force, on_node=on_node)
        PromotionReporter(CONSOLE).sync(result)
        if result.deployed is not None and not result.deployed.ok:
            raise Exit(EXIT_FINDINGS)
