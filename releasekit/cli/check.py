"""`releasekit check`: is this branch fit to merge? Lint, build and test, logic tests, impact
and diff, with reports for the terminal, CI test views (JUnit), PR comments (Markdown) and
tools (JSON)."""

from __future__ import annotations

from pathlib import Path

import click

from releasekit.checks.report import CHECK_ORDER, CheckName
from releasekit.cli.errors import Exit
from releasekit.cli.session import CONSOLE, session
from releasekit.errors import EXIT_FINDINGS, ConfigError


@click.command("check")
@click.option(
    "--env", "env", metavar="BRANCH", help="The branch environment (default: the current branch's)."
)
@click.option("--base", metavar="ENV", help="Compare against ENV (default: the branch environment's base).")
@click.option("--only", metavar="CHECKS", help="Comma-separated subset of lint,build,logic,diff.")
@click.option("--all", "lint_all", is_flag=True, help="Lint every SQL file, not only the changed ones.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option(
    "--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Write a Markdown report here."
)
@click.option(
    "--json", "json_", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report."
)
@click.pass_context
def check(
    ctx: click.Context,
    env: str | None,
    base: str | None,
    only: str | None,
    lint_all: bool,
    junit: Path | None,
    markdown: Path | None,
    json_: Path | None,
) -> None:
    """Check a branch in its environment: exit 0 when nothing at error severity was found,
    1 when something was, 2 when the checks could not run."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api
        from releasekit.checks.codec import to_json
        from releasekit.reporting.check_terminal import CheckTerminalReporter
        from releasekit.reporting.junit import to_junit_xml
        from releasekit.reporting.markdown import to_markdown

        selected = _only(only)
        terminal = CheckTerminalReporter(CONSOLE)
        with terminal.checking(env or workspace.current_branch()) as on_node:
            report = api.check(
                workspace,
                env,
                base=base,
                only=selected,
                lint_all=lint_all,
                on_node=on_node,
                on_wait=reporter.waiting,
            )
        for path, render in ((junit, to_junit_xml), (markdown, to_markdown), (json_, to_json)):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(report), encoding="utf-8")
        terminal.check(report)
        if not report.passed:
            raise Exit(EXIT_FINDINGS)


def _only(value: str | None) -> tuple[CheckName, ...]:
    if value is None:
        return CHECK_ORDER
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [part for part in chosen if part not in CHECK_ORDER]
    if unknown or not chosen:
        raise ConfigError(
            f"--only {value!r}: unknown check(s) {', '.join(map(repr, unknown))}"
            if unknown
            else "--only is empty",
            hint=f"choose from {','.join(CHECK_ORDER)}",
        )
    return tuple(name for name in CHECK_ORDER if name in chosen)


@click.command("lint")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--env", "env", metavar="ENV", help="Whose vars render the SQL (default: dev).")
@click.pass_context
def lint(ctx: click.Context, files: tuple[Path, ...], env: str | None) -> None:
    """Lint FILES with sqlfluff as `releasekit check` does (the pre-commit hook runs this on
    staged SQL files). Exit 1 on a finding at error severity."""
    with session(ctx) as (workspace, _):
        from releasekit import api
        from releasekit.reporting.check_terminal import CheckTerminalReporter

        result = api.lint(workspace, [path.resolve() for path in files], env=env)
        CheckTerminalReporter(CONSOLE).lint(result)
        if result.status == "failed" and result.severity == "error":
            raise Exit(EXIT_FINDINGS)
