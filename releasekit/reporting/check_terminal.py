"""`releasekit check` in the terminal, with rich: a line and a table per check, the impact of
each changed model, then one verdict line.

Tables stay compact: at most `max_rows` rows each, then "… and N more". Every value from
the project (messages, paths, names) is put in as `Text`, never as markup, so a `[red]` in
a lint message prints as written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from releasekit.checks.report import CheckReport, CheckResult, Finding, ModelImpact, node_kind
from releasekit.reporting.progress import node_progress

MAX_ROWS = 15
_COLUMNS = {
    "lint": ("location", "rule", "message"),
    "build": ("failed", "kind", "message"),
    "logic": ("logic test", "severity", "message"),
    "diff": ("model", "finding", "message"),
}
_IMPACT_COLUMNS = ("model", "change", "columns", "rows", "added/removed/changed", "breaks")
_NOUNS = {"lint": "findings", "build": "failures", "logic": "failed logic tests", "diff": "findings"}
_CLASS_STYLE = {"breaking": "bold red", "non-breaking": "yellow", "metadata-only": "dim"}
_CLASS_ORDER = {"breaking": 0, "non-breaking": 1, "metadata-only": 2}


class CheckTerminalReporter:
    def __init__(self, console: Console | None = None, *, max_rows: int = MAX_ROWS) -> None:
        self.console = console or Console(highlight=False)
        self.max_rows = max_rows

    def checking(self, env: str) -> AbstractContextManager[Callable[[str, str], None]]:
        """A live status line while dbt builds and tests: yields an `on_node(unique_id, status)`."""
        return node_progress(self.console, f"checking {env}")

    def check(self, report: CheckReport) -> None:
        """The whole report, ending in the verdict line."""
        self.console.print(_header(report))
        for result in report.checks:
            self.console.print(_check_line(result))
            rows = [_finding_row(finding) for finding in result.findings[: self.max_rows]]
            self._table(_COLUMNS[result.name], rows, len(result.findings), _NOUNS[result.name])
        if report.impacts:
            self.console.print(Text("Impact", style="bold"))
            ordered = sorted(report.impacts, key=lambda impact: _CLASS_ORDER[impact.classification])
            rows = [_impact_row(impact) for impact in ordered[: self.max_rows]]
            self._table(_IMPACT_COLUMNS, rows, len(report.impacts), "changed models")
        for note in report.notes[: self.max_rows]:
            self.console.print(Text(f"note: {note}", style="dim"))
        self._more(len(report.notes) - self.max_rows, "notes")
        self.console.print(verdict_line(report))

    def lint(self, result: CheckResult) -> None:
        """`releasekit lint`: the check line and its findings."""
        self.console.print(_check_line(result))
        rows = [_finding_row(finding) for finding in result.findings[: self.max_rows]]
        self._table(_COLUMNS["lint"], rows, len(result.findings), _NOUNS["lint"])

    def _table(self, columns: Sequence[str], rows: Sequence[Sequence[Text]], total: int, noun: str) -> None:
        if not rows:
            return
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.console.print(Padding(table, (0, 0, 0, 2), expand=False))
        self._more(total - len(rows), noun)

    def _more(self, count: int, noun: str) -> None:
        if count > 0:
            self.console.print(Text(f"  … and {count:,} more {noun}", style="dim"))


def verdict_line(report: CheckReport) -> Text:
    """One line: the verdict, marked and coloured."""
    warned = any(check.status == "failed" for check in report.checks)
    mark, style = (
        ("✘", "bold red") if not report.passed else ("⚠", "bold yellow") if warned else ("✔", "bold green")
    )
    return Text.assemble((f"{mark} {report.verdict}", style), f" ({report.seconds:.1f} s)")


def _header(report: CheckReport) -> Text:
    release = "no release" if report.release_id is None else f"release {report.release_id}"
    files = f", {len(report.changed_files):,} changed file(s)" if report.changed_files else ""
    return Text.assemble(
        ("Checks of ", "bold"),
        (report.env, "bold cyan"),
        f" ({release}, commit {_short(report.git_sha)}) against ",
        (report.base, "cyan"),
        f" (commit {_short(report.base_sha)}){files}",
    )


def _check_line(result: CheckResult) -> Text:
    if result.status == "failed":
        mark, style = ("✘", "bold red") if result.severity == "error" else ("⚠", "bold yellow")
    else:
        mark, style = ("✔", "bold green") if result.status == "passed" else ("○", "dim")
    policy = " (warn only)" if result.severity == "warn" and result.status != "skipped" else ""
    return Text.assemble(
        (f"{mark} {result.name}", style), policy, f": {result.summary}", (f" ({result.seconds:.1f} s)", "dim")
    )


def _finding_row(finding: Finding) -> list[Text]:
    if finding.check == "lint":
        return [Text(_location(finding), style="cyan"), Text(finding.code), Text(finding.message)]
    if finding.check == "build":
        return [Text(finding.code, style="cyan"), Text(node_kind(finding.subject)), Text(finding.message)]
    if finding.check == "logic":
        style = "red" if finding.severity == "error" else "yellow"
        return [Text(finding.code), Text(finding.severity, style=style), Text(finding.message)]
    return [
        Text(finding.subject or finding.path or "", style="cyan"),
        Text(finding.code),
        Text(finding.message),
    ]


def _impact_row(impact: ModelImpact) -> list[Text]:
    marks = {"added": "+", "removed": "-", "retyped": "~"}
    columns = ", ".join(f"{marks[c.change]}{c.column}" for c in impact.columns)
    rows = f"{_count(impact.rows_before)} → {_count(impact.rows_after)}"
    diff = f"+{impact.rows.added:,} -{impact.rows.removed:,} ~{impact.rows.changed:,}" if impact.rows else ""
    breaks = ", ".join(impact.breaking_because[:3]) + (" …" if len(impact.breaking_because) > 3 else "")
    return [
        Text(impact.model, style="cyan"),
        Text(impact.classification, style=_CLASS_STYLE[impact.classification]),
        Text(columns),
        Text(rows),
        Text(diff),
        Text(breaks),
    ]


def _location(finding: Finding) -> str:
    parts = (finding.path or finding.subject, finding.line, finding.column)
    return ":".join(str(part) for part in parts if part is not None)


def _count(rows: int | None) -> str:
    return "-" if rows is None else f"{rows:,}"


def _short(sha: str) -> str:
    return sha[:7] + ("-dirty" if sha.endswith("-dirty") else "")
