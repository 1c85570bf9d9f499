"""The state store in the terminal: `state show`, `state migrate` and `doctor`."""

from __future__ import annotations

import dataclasses
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from releasekit.config.secrets import redact_urls
from releasekit.state.doctor import DoctorReport
from releasekit.state.documents import HeldLock, lock_words
from releasekit.state.migrate import MigrationResult
from releasekit.state.summary import StateSummary

_SHOWN_COMMITS = 10


class StateReporter:
    def __init__(self, console: Console) -> None:
        self.console = console

    # --- state show -------------------------------------------------------------------------

    def show(self, summary: StateSummary, *, as_json: bool = False) -> None:
        if as_json:
            text = json.dumps(dataclasses.asdict(summary), indent=2)
            self.console.out(redact_urls(text), highlight=False)
            return
        self.console.print(f"[bold]State:[/] {escape(summary.where)} ({_kind(summary)})")
        self._environments(summary)
        self._branches(summary)
        self._checks(summary)
        self.console.print(f"Artifacts: {summary.artifacts} ({_size(summary.artifact_bytes)})")
        self._locks(summary.locks)

    def _environments(self, summary: StateSummary) -> None:
        if not summary.environments:
            self.console.print("Ledgers: none yet (nothing deployed)")
            return
        table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
        for column in ("environment", "ledger entries", "live release"):
            table.add_column(column)
        for env in summary.environments:
            live = "-" if env.live_release is None else str(env.live_release)
            table.add_row(escape(env.name), str(env.entries), live)
        self.console.print("Ledgers:")
        self.console.print(table)

    def _branches(self, summary: StateSummary) -> None:
        self.console.print(f"Branch environments registered: {len(summary.branches)}")
        for record in summary.branches:
            self.console.print(
                f"  {escape(record.branch)} (schema {escape(record.schema)}, from {escape(record.base)} "
                f"release {record.base_release}, expires {record.expires_at})",
                highlight=False,
            )

    def _checks(self, summary: StateSummary) -> None:
        commits = summary.checked_commits
        records = sum(count for _, count in commits)
        self.console.print(f"Commits with check records: {len(commits)} ({records} records)")
        for sha, count in commits[:_SHOWN_COMMITS]:
            self.console.print(f"  {escape(sha[:12])}: {count} record(s)", highlight=False)
        if len(commits) > _SHOWN_COMMITS:
            self.console.print(f"  … {len(commits) - _SHOWN_COMMITS} more")

    def _locks(self, locks: tuple[HeldLock, ...]) -> None:
        if not locks:
            self.console.print("Locks: none held")
            return
        self.console.print(f"Locks: {len(locks)}")
        for lock in locks:
            self.console.print(f"  {lock.state}: {escape(lock_words(lock))}", highlight=False)

    # --- state migrate ------------------------------------------------------------------------

    def migrated(self, result: MigrationResult) -> None:
        self.console.print(
            f"[bold green]✔ Migrated[/] {escape(result.source)} → {escape(result.destination)}: "
            f"copied {len(result.copied)} documents ({_size(result.bytes_copied)}), "
            f"{len(result.skipped)} already there with the same bytes; "
            f"{result.verified} verified (read back, sha256 compared, parsed).",
            highlight=False,
        )
        self.console.print("The source was only read. To use the new state, put this in releasekit.yml:")
        self.console.print(f"    {escape(redact_urls(result.switch_line))}", highlight=False, soft_wrap=True)
        self.console.print(
            "(RELEASEKIT_STATE_URL, when set, wins over releasekit.yml: change or unset it too.)", style="dim"
        )

    # --- doctor -------------------------------------------------------------------------------

    def doctor(self, report: DoctorReport) -> None:
        if report.where:
            self.console.print(f"[bold]Doctor:[/] {escape(report.where)}")
        for check in report.checks:
            mark = "[green]✔[/]" if check.passed else "[red]✘[/]"
            self.console.print(f"{mark} {check.name}: {escape(redact_urls(check.detail))}", highlight=False)
            for item in check.items:
                self.console.print(f"    {escape(redact_urls(item))}", highlight=False)
            if check.hint and not check.passed:
                self.console.print(f"  [yellow]hint:[/] {escape(redact_urls(check.hint))}", highlight=False)
        failed = [check.name for check in report.checks if not check.passed]
        if failed:
            self.console.print(f"[bold red]{len(failed)} check(s) failed:[/] {', '.join(failed)}")
        else:
            self.console.print("[bold green]All checks passed.[/]")


def _kind(summary: StateSummary) -> str:
    if summary.kind == "folder":
        return "a local folder"
    location = summary.location
    extra = [
        f"{label} {value}"
        for label, value in (
            ("region", location.region),
            ("endpoint", location.endpoint_url and redact_urls(location.endpoint_url)),
            ("profile", location.profile),
        )
        if value
    ]
    return ", ".join(["S3", *extra, f"lock time to live {location.lock_ttl_seconds} s"])


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} bytes"
