"""`releasekit refresh` in the terminal: the sources read, what is written and why, and one
verdict line (published, held back, nothing to do, or the plan of a dry run)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from releasekit.api import EnvironmentStatus, RefreshResult
from releasekit.engine.refresh import RefreshPlan
from releasekit.reporting.spc_terminal import SpcTerminalReporter
from releasekit.state.base import ModelVersion
from releasekit.warehouse.inspection import rows_of

MAX_KEPT_ROWS = 10
_ACTION_STYLE = {"write": "yellow", "reuse": "green", "test": "blue", "keep": "dim"}


class RefreshTerminalReporter:
    def __init__(self, console: Console) -> None:
        self.console = console

    def refresh(self, result: RefreshResult) -> None:
        plan = result.plan
        live = plan.live
        if result.outcome == "noop" and not plan.sources:
            self.console.print(
                f"[green]Nothing to refresh:[/] {plan.env}'s models read no dbt source (`source()`): their "
                "data comes from seeds, which change only with code (deploy them)."
            )
            return
        if result.outcome == "noop":
            self.console.print(
                f"[green]Nothing to refresh:[/] the {len(plan.sources)} source(s) {plan.env}'s models read "
                f"hold the data its release {live.release_id} was written on; nothing written."
            )
            return
        self._header(plan, dry_run=result.outcome == "planned")
        self.console.print(self._sources(plan))
        self.console.print(self._steps(plan))
        if result.outcome == "planned":
            self.console.print("[dim]Dry run: nothing written, nothing switched.[/]")
        elif result.outcome == "published":
            self._published(result)
        else:
            self._held(result)
        SpcTerminalReporter(self.console).quality(result.quality, result.alert)

    def data_versions(self, status: EnvironmentStatus) -> None:
        """Per model of the environment's live release: the relation, when its data was
        written and the rows of each source it was written on."""
        live = status.live
        if live is None:
            self.console.print(f"{status.env} serves no release.")
            return
        table = Table(title=f"Data {status.env} serves (release {live.release_id})", header_style="bold")
        for column in ("model", "physical relation", "data written", "sources (rows)"):
            table.add_column(column)
        for version in sorted(live.models.values(), key=lambda v: v.name):
            sources = ", ".join(
                f"{uid.rsplit('.', 2)[-2]}.{uid.rsplit('.', 1)[-1]} ({_count(rows_of(data))})"
                for uid, data in sorted(version.data.items())
            )
            written = version.written_at.replace("T", " ")[:16] if version.written_at else "?"
            table.add_row(
                Text(version.name), version.relation, written if version.data else "-", Text(sources or "-")
            )
        self.console.print(table)

    def _header(self, plan: RefreshPlan, *, dry_run: bool) -> None:
        changed = [source for source in plan.sources if source.changed]
        self.console.print(
            f"[bold]{'Refresh plan' if dry_run else 'Refresh'} of {plan.env}[/] (live release "
            f"{plan.live.release_id}, commit {plan.live.git_sha[:7]}): {len(changed)} of "
            f"{len(plan.sources)} source(s) changed; "
            f"{len(plan.writes)} to write, "
            + (f"{len(plan.retests)} to test again, " if plan.retests else "")
            + f"{len(plan.changes) - len(plan.writes) - len(plan.retests)} to reuse, "
            f"{len(plan.steps) - len(plan.changes)} kept"
        )

    def _sources(self, plan: RefreshPlan) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("source", "rows then", "rows now", "data"):
            table.add_column(column)
        for source in plan.sources:
            then = rows_of(source.recorded or "")
            now = rows_of(source.now)
            state = "[yellow]changed[/]" if source.changed else "[dim]unchanged[/]"
            if source.recorded is None:
                state = "[yellow]not recorded[/]"
            table.add_row(Text(source.name), _count(then), _count(now), state)
        return table

    def _steps(self, plan: RefreshPlan) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("model", "action", "physical relation", "why"):
            table.add_column(column)
        for step in plan.changes:
            style = _ACTION_STYLE[step.action]
            table.add_row(
                Text(step.name), f"[{style}]{step.action}[/]", step.relation, Text("; ".join(step.reasons))
            )
        kept = [step for step in plan.steps if step.action == "keep"]
        for step in kept[:MAX_KEPT_ROWS]:
            table.add_row(Text(step.name, style="dim"), "[dim]keep[/]", Text(step.relation, style="dim"), "")
        if len(kept) > MAX_KEPT_ROWS:
            table.add_row(f"[dim]… {len(kept) - MAX_KEPT_ROWS} more kept[/]", "", "", "")
        return table

    def _published(self, result: RefreshResult) -> None:
        plan = result.plan
        rows = sum(result.rows.values())
        tests = sum(r.resource_type in ("test", "unit_test") for r in result.results)
        self.console.print(
            f"[bold green]✔ {plan.env} is now release {result.release_id}[/] (refreshed data, commit "
            f"{plan.live.git_sha[:7]}): wrote {len(plan.writes)} ({rows:,} rows), "
            f"{tests} test(s) passed, switched atomically in {result.seconds.get('publish', 0):.2f} s."
        )

    def _held(self, result: RefreshResult) -> None:
        plan = result.plan
        # What dbt skipped because a parent failed says nothing of its own: count it.
        failed = [f for f in result.failures if f.status != "skipped"] or list(result.failures)
        skipped = len(result.failures) - len(failed)
        spc = [f for f in failed if f.resource_type == "spc"]  # in the SPC table below
        self.console.print(
            f"[bold red]✘ refresh of {plan.env} held back[/]: {len(failed)} failure(s)"
            + (f" ({skipped} skipped: they depend on what failed)" if skipped else "")
            + "; "
            f"{plan.env} keeps serving release {plan.live.release_id} and its data. What the refresh wrote "
            f"was dropped; the attempt is recorded as release {result.release_id} (failed)."
        )
        if len(spc) == len(failed):
            return
        table = Table(box=None, header_style="bold")
        for column in ("node", "kind", "status", "message"):
            table.add_column(column)
        for failure in failed:
            if failure in spc:
                continue
            table.add_row(
                Text(failure.unique_id),
                failure.resource_type,
                f"[red]{failure.status}[/]",
                Text(failure.message),
            )
        self.console.print(table)


def oldest_data(versions: Iterable[ModelVersion]) -> str:
    """When the oldest data an environment serves was written, and by which model: the
    freshness its consumers can count on. '-' when no model reads a source."""
    dated = sorted((v.written_at, v.name) for v in versions if v.data and v.written_at)
    if not dated:
        return "-"
    at, name = dated[0]
    return f"{at.replace('T', ' ')[:16]} ({name})"


def _count(rows: int | None) -> str:
    return "?" if rows is None else f"{rows:,}"
