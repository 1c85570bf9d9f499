"""`releasekit env list` in a narrow terminal: branch and schema names wrap, never cut, and
a branch name is printed as text, never read as markup."""

from __future__ import annotations

from rich.console import Console

from releasekit.environments.lifecycle import BranchStatus
from releasekit.reporting.terminal import TerminalReporter
from releasekit.state.base import BranchEnvironment

LONG = "feature/JIRA-4711-rework-the-customer-lifetime-value-model-for-the-spring-campaign"


def _status(branch: str, schema: str) -> BranchStatus:
    record = BranchEnvironment(
        branch,
        schema,
        "dev",
        3,
        "Ada <ada@example.com>",
        "2026-12-08T09:00:00+00:00",
        "2026-12-22T09:00:00+00:00",
    )
    return BranchStatus(record, branch_exists=True, expired=False, live_release=2)


def test_long_names_wrap_whole_and_branch_names_are_not_markup() -> None:
    console = Console(record=True, width=80)
    schema = "br_feature_jira_4711_rework_the_customer_lifetime_value_model_9f3a"
    TerminalReporter(console).env_list([_status(LONG, schema), _status("fix/[red]colour[/red]", "br_fix")])

    text = console.export_text()
    cells = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.count("│") > 2)
    assert LONG in cells  # every character of it, across the wrapped lines
    assert "fix/[red]colour[/red]" in cells  # text, not markup
