"""Promotion and sync in the terminal: the gates, the branch move, the deploy, the tag."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from releasekit.api import PromoteResult, SyncResult
from releasekit.reporting.terminal import TerminalReporter, short


class PromotionReporter:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.terminal = TerminalReporter(console)

    def promote(self, result: PromoteResult) -> None:
        what = f"{result.src} release {result.src_release} (commit {short(result.commit)}) → {result.dst}"
        self.console.print(f"[bold]Promote {what}[/]", highlight=False)
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("gate", "result", "detail"):
            table.add_column(column)
        for gate in result.gates:
            verdict = (
                "[yellow]forced[/]"
                if gate.forced
                else ("[green]passed[/]" if gate.passed else "[red]refused[/]")
            )
            table.add_row(gate.name, verdict, gate.detail)
        self.console.print(table)
        self.console.print(f"branch {result.branch}: {result.branch_update}", highlight=False)
        if result.deployed is None:
            would = "Past its gates, the deploy" if result.refused else "The deploy"
            self.console.print(f"[cyan]Dry run:[/] nothing changed. {would} would do this:")
            if result.plan is not None:
                self.terminal.plan(result.plan)
            return
        self.terminal.deploy(result.deployed)
        if result.tag:
            self.console.print(f"tagged {result.tag}", highlight=False)
        if result.pushed:
            self.console.print(f"pushed {', '.join(result.pushed)} to {result.remote}", highlight=False)
        elif result.tag:
            self.console.print("no remote configured (or --no-push): nothing pushed", style="dim")

    def sync(self, result: SyncResult) -> None:
        hold = result.hold
        if result.held and hold is not None:
            self.console.print(
                f"[yellow]{result.env} is held:[/] rolled back from release {hold.from_release} "
                f"({short(hold.from_commit)}) to {hold.to_release} by {hold.who.split(' <')[0]} at "
                f"{hold.at.replace('T', ' ')[:16]}; {result.branch}'s head {short(result.head)} brings no "
                f"other dbt project, so nothing was deployed. `releasekit sync {result.env} --force` "
                "deploys it anyway.",
                highlight=False,
            )
            return
        if result.deployed is None:
            self.console.print(
                f"[green]{result.env} is in sync:[/] it serves {result.branch}'s head {short(result.head)}.",
                highlight=False,
            )
            return
        before = short(result.deployed_before) if result.deployed_before else "nothing"
        if result.deployed_before == result.head:
            head = short(result.head)
            said = f"{result.env} serves {result.branch}'s head {head}, but its warehouse drifted."
        else:
            said = f"{result.env}: {result.branch} is at {short(result.head)}, {result.env} served {before}."
        self.console.print(said, highlight=False)
        self.terminal.deploy(result.deployed)
        if hold is not None and result.deployed.outcome == "succeeded":
            self.console.print(f"{result.env}'s hold (rollback to release {hold.to_release}) has ended.")
