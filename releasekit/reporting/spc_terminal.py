"""Statistical process control in the terminal: the findings of a deploy or refresh (and
the alert sent about them), and `releasekit spc`: each metric's recent history with its
centre line, limits and the rules broken."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from releasekit.alerts.webhook import Delivery
from releasekit.api import MetricSeries
from releasekit.engine.quality import Assessment, SeriesPoint
from releasekit.spc.model import RULES

RECENT_POINTS = 10


def number(value: float) -> str:
    """Readable at any scale: 1,234 / 12.35 / 0.0512 / 1.2e-05."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


class SpcTerminalReporter:
    def __init__(self, console: Console) -> None:
        self.console = console

    def quality(self, quality: Assessment, alert: Delivery | None) -> None:
        """The SPC lines of a deploy's or refresh's summary."""
        if not quality.measurements:
            return
        if not quality.findings:
            measured = f"SPC: measured {len(quality.measurements)} model(s); "
            self.console.print(
                measured
                + (
                    f"{quality.judged} metric(s) judged against their history, all within their limits."
                    if quality.judged
                    else "too little history to judge them yet."
                ),
                highlight=False,
            )
        else:
            self.console.print(self._findings(quality))
        for uid, reason in sorted(quality.accepted.items()):
            self.console.print(Text(f"  accepted {uid}: {reason} (its history starts again here)"))
        if alert is not None:
            self._alert(alert)
        elif any(not f.accepted for f in quality.findings):
            self.console.print(
                "[dim]No alert sent: set alerts.webhook in releasekit.yml (or RELEASEKIT_ALERT_WEBHOOK).[/]"
            )

    def series(self, env: str, found: Sequence[MetricSeries], *, detail: bool) -> None:
        """`releasekit spc`: a line per metric, or (detail) each metric's recent points."""
        if not found:
            self.console.print(f"{env}: nothing measured yet; deploys and refreshes measure what they write.")
            return
        if not detail:
            self.console.print(self._overview(env, found))
            return
        for series in found:
            self.console.print(self._history(env, series))
        self._legend(found)

    def _findings(self, quality: Assessment) -> Table:
        table = Table(title="SPC findings", title_justify="left", header_style="bold", box=None)
        for column in ("model", "metric", "observed", "expected", "limits", "rule", "severity"):
            table.add_column(column)
        for finding in quality.findings:
            limits = finding.verdict.limits
            severity = "accepted" if finding.accepted else finding.severity
            style = {"error": "red", "warn": "yellow"}.get(severity, "green")
            table.add_row(
                Text(finding.name),
                Text(finding.metric),
                number(finding.verdict.value),
                number(limits.centre) if limits else "-",
                f"{number(limits.lower)} .. {number(limits.upper)}" if limits else "-",
                Text("; ".join(RULES[rule] for rule in finding.verdict.rules)),
                f"[{style}]{severity}[/]",
            )
        return table

    def _alert(self, alert: Delivery) -> None:
        if alert.sent:
            self.console.print(f"Alert sent ({alert.attempts} attempt(s)).", highlight=False)
        else:
            self.console.print(Text(f"Alert not sent: {alert.error}", style="yellow"))  # URL redacted

    def _overview(self, env: str, found: Sequence[MetricSeries]) -> Table:
        table = Table(title=f"SPC of {env}", title_justify="left", header_style="bold")
        for column in ("model", "metric"):
            table.add_column(column, overflow="fold")  # names are what a user types: never cut
        for column in ("points", "last", "centre", "limits", "baseline", "last verdict"):
            table.add_column(column)
        for series in found:
            last = series.last
            limits = last.verdict.limits
            table.add_row(
                Text(series.name),
                Text(series.metric),
                str(len(series.points)),
                number(last.verdict.value),
                number(limits.centre) if limits else "-",
                f"{number(limits.lower)} .. {number(limits.upper)}" if limits else "-",
                limits.baseline if limits else "-",
                _verdict(last),
            )
        return table

    def _history(self, env: str, series: MetricSeries) -> Table:
        shown = series.points[-RECENT_POINTS:]
        title = f"{env} · {series.name} · {series.metric} (last {len(shown)} of {len(series.points)} points)"
        table = Table(title=title, title_justify="left", header_style="bold", box=None)
        for column in ("written", "release", "value", "centre", "limits", "verdict"):
            table.add_column(column)
        for point in shown:
            limits = point.verdict.limits
            table.add_row(
                point.verdict.at.replace("T", " ")[:16],
                f"{point.release_id if point.release_id is not None else '-'} ({point.kind})",
                number(point.verdict.value),
                number(limits.centre) if limits else "-",
                f"{number(limits.lower)} .. {number(limits.upper)}" if limits else "-",
                _verdict(point),
            )
        return table

    def _legend(self, found: Sequence[MetricSeries]) -> None:
        broken = sorted({rule for s in found for p in s.points for rule in p.verdict.rules})
        for rule in broken:
            self.console.print(Text(f"  {rule}: {RULES[rule]}", style="dim"))


def _verdict(point: SeriesPoint) -> str:
    state = "" if point.published else " [dim](held back)[/]"
    if point.accepted:
        state += " [green](accepted)[/]"
    if point.verdict.limits is None:
        return "[dim]too little history[/]" + state
    if point.verdict.rules:
        return f"[red]{', '.join(point.verdict.rules)}[/]" + state
    return "[green]in control[/]" + state
