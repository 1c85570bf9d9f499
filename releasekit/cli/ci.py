"""`releasekit ci`: the CI files for GitHub or GitLab, and the pull-request comment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from releasekit.ci import DEFAULT_PYTHON
from releasekit.cli.errors import handled
from releasekit.cli.session import CONSOLE, ERR_CONSOLE

if TYPE_CHECKING:
    from releasekit.api import CiInitResult


@click.group("ci")
def ci() -> None:
    """Run releasekit in CI: checks on pull requests, deploys on merge, promotions on demand."""


@ci.command("init")
@click.argument("platform", type=click.Choice(["github", "gitlab"]))
@click.option("--force", is_flag=True, help="Overwrite releasekit's CI files where they exist.")
@click.option("--python", "python_version", default=DEFAULT_PYTHON, show_default=True, help="Python in CI.")
@click.option(
    "--refresh-schedule",
    "refresh_schedule",
    multiple=True,
    metavar="[ENV=]CRON",
    help="When `releasekit refresh` runs (cron, UTC): CRON for every environment, ENV=CRON for one. "
    "Repeatable. Default: daily from 05:07, 20 minutes apart in promotion order.",
)
@click.pass_context
def init(
    ctx: click.Context, platform: str, force: bool, python_version: str, refresh_schedule: tuple[str, ...]
) -> None:
    """Write releasekit's CI files for PLATFORM, filled in for this project.

    \b
    github: .github/workflows/releasekit-{pr,deploy,promote,refresh,gc}.yml
    gitlab: releasekit.gitlab-ci.yml, included from .gitlab-ci.yml"""
    with handled(ERR_CONSOLE):
        from releasekit import api

        start = ctx.obj["project_root"]
        result = api.ci_init(
            platform, start, force=force, python_version=python_version, refresh_schedule=refresh_schedule
        )
        _report_init(result)


@ci.command("comment")
@click.argument("file", type=click.Path(path_type=Path))
def comment(file: Path) -> None:
    """Post FILE (`releasekit check --markdown FILE`) as the pull request's comment,
    replacing the one an earlier run posted. Reads the CI job's variables."""
    with handled(ERR_CONSOLE):
        from releasekit import api

        result = api.ci_comment(file)
        where = f" {result.url}" if result.url else ""
        CONSOLE.print(f"{result.action} the releasekit comment on {result.where}{where}", markup=False)


def _report_init(result: CiInitResult) -> None:
    for path in result.written:
        CONSOLE.print(f"[green]wrote[/] {escape(path.relative_to(result.root).as_posix())}")
    for name in result.skipped:
        CONSOLE.print(f"[dim]skipped {escape(name)}: no environment is promoted from another[/]")
    context = result.context
    CONSOLE.print(f"Promotion chain: {escape(context.chain)}; CI installs {escape(context.pip_spec)}.")
    when = ", ".join(f"{r.stage.name} '{r.cron}'" for r in context.refreshes)
    CONSOLE.print(f"Refresh schedule (cron, UTC): {when}.", markup=False)
    if result.include:
        CONSOLE.print("Add this to your .gitlab-ci.yml:", markup=False)
        CONSOLE.print(result.include.rstrip(), markup=False)
    if context.local_state:
        CONSOLE.print(
            "[yellow]note:[/] releasekit.yml keeps the state in this clone; CI runners are thrown away, "
            "so set the CI variable RELEASEKIT_STATE_URL (s3://bucket/prefix) or `state:` in releasekit.yml."
        )
    CONSOLE.print(f"Next: {_NEXT[result.platform]}", markup=False)


_NEXT = {
    "github": "set the repository variables the workflows' headers name (RELEASEKIT_STATE_URL, "
    "RELEASEKIT_AWS_ROLE_ARN, RELEASEKIT_AWS_REGION), map your warehouse secrets under `env:`, give "
    "the GitHub environments you promote into required reviewers, then commit and push.",
    "gitlab": "set the CI/CD variables the file's header names (RELEASEKIT_STATE_URL, AWS access, "
    "RELEASEKIT_GITLAB_TOKEN), protect the environments you promote into, add pipeline schedules: one "
    "for `env gc` and one per environment to refresh, with the variable RELEASEKIT_REFRESH_ENV (the "
    "file's header says how), then commit and push.",
}
