"""Terminal rendering with rich. The core returns values; this module alone draws them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from releasekit.api import (
    BranchStatus,
    CheckReport,
    DeployResult,
    DownResult,
    EnvironmentStatus,
    GcResult,
    InitResult,
    MetricSeries,
    NodeCallback,
    Plan,
    RefreshResult,
    RollbackResult,
    UpResult,
)
from releasekit.reporting.check_terminal import CheckTerminalReporter
from releasekit.reporting.progress import node_progress
from releasekit.reporting.refresh_terminal import RefreshTerminalReporter, oldest_data
from releasekit.reporting.spc_terminal import SpcTerminalReporter
from releasekit.state.base import LedgerEntry, LockInfo

MAX_REUSED_ROWS = 25


def short(sha: str) -> str:
    return sha[:7] + ("-dirty" if sha.endswith("-dirty") else "")


class TerminalReporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    def plan(self, plan: Plan) -> None:
        live = (
            f"release {plan.live.release_id} of commit {short(plan.live.git_sha)}"
            if plan.live
            else "no release yet"
        )
        self.console.print(
            f"[bold]Plan for {plan.env}[/] of commit {short(plan.git_sha)} (schema [cyan]{plan.schema}[/], "
            f"live: {live}): [bold]{len(plan.builds)} to build[/], "
            + (f"{len(plan.retests)} to test again, " if plan.retests else "")
            + f"{len(plan.reuses) - len(plan.retests)} to reuse"
        )
        for warning in plan.warnings:
            self.console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        self.console.print(self._steps_table(plan))
        self._views(plan)

    def _steps_table(self, plan: Plan) -> Table:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for column in ("model", "action", "physical relation", "why"):
            table.add_column(column)
        for step in plan.builds:
            table.add_row(step.name, "[yellow]build[/]", step.relation, "; ".join(step.reasons))
        for step in plan.retests:
            table.add_row(step.name, "[blue]test[/]", step.relation, "; ".join(step.reasons))
        reused = [step for step in plan.steps if step.action == "reuse"]
        for step in reused[:MAX_REUSED_ROWS]:
            table.add_row(f"[dim]{step.name}[/]", "[green]reuse[/]", f"[dim]{step.relation}[/]", "")
        if len(reused) > MAX_REUSED_ROWS:
            table.add_row(f"[dim]… {len(reused) - MAX_REUSED_ROWS} more reused[/]", "", "", "")
        return table

    def _views(self, plan: Plan) -> None:
        parts = [
            (plan.views_added, "added"),
            (plan.views_switched, "switched"),
            (plan.views_dropped, "dropped"),
        ]
        said = [
            f"{len(names)} {word} ({', '.join(names[:8])}{', …' if len(names) > 8 else ''})"
            for names, word in parts
            if names
        ]
        self.console.print(f"Views in [cyan]{plan.schema}[/]: " + ("; ".join(said) or "unchanged"))
        for problem in plan.repairs:
            self.console.print(f"  [yellow]to repair[/] {escape(problem)}", highlight=False)

    def deploying(self, env: str) -> AbstractContextManager[NodeCallback]:
        """A live status line while releasekit parses and dbt builds and tests."""
        return node_progress(self.console, f"deploying {env}")

    def deploy(self, result: DeployResult) -> None:
        plan = result.plan
        if result.outcome == "noop":
            live = plan.live.release_id if plan.live else "?"
            self.console.print(
                f"[green]Nothing changed:[/] {plan.env} stays on release {live}; nothing built."
            )
        elif result.repaired_in_place:
            self.console.print(
                f"[bold green]✔ {plan.env} repaired:[/] release {result.release_id} switched in again "
                f"whole ({len(plan.views)} views and the marker); nothing built.",
                highlight=False,
            )
            self._repaired(result)
        elif result.outcome == "succeeded":
            self.console.print(
                f"[bold green]✔ {plan.env} is now release {result.release_id}[/] "
                f"(commit {short(plan.git_sha)}): built {len(plan.builds)}, "
                + (f"tested again {len(plan.retests)}, " if plan.retests else "")
                + f"reused {len(plan.reuses) - len(plan.retests)}, "  # each model counted once
                f"{len(plan.views)} views switched atomically."
            )
            self._built(plan)
            self._repaired(result)
        else:
            self._failed(result)
        SpcTerminalReporter(self.console).quality(result.quality, result.alert)

    def _repaired(self, result: DeployResult) -> None:
        for problem in result.repaired:
            self.console.print(f"  [yellow]repaired[/] {escape(problem)}", highlight=False)

    def _built(self, plan: Plan) -> None:
        """One line per build, or one per reason when many builds share it."""
        by_reason: dict[str, list[str]] = {}
        for step in plan.builds:
            by_reason.setdefault("; ".join(step.reasons), []).append(step.name)
        for reason, names in by_reason.items():
            if len(names) <= 3:
                for name in names:
                    self.console.print(f"  built [yellow]{name}[/] ({reason})")
                continue
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            self.console.print(f"  built {len(names)} ({reason}): {shown}")

    def _failed(self, result: DeployResult) -> None:
        plan = result.plan
        live = f"release {plan.live.release_id}" if plan.live else "no release"
        self.console.print(
            f"[bold red]✘ deploy of {plan.env} failed[/]: {len(result.failures)} failure(s); "
            f"{plan.env} stays on {live}. Attempt recorded as release {result.release_id} (failed)."
        )
        listed = [f for f in result.failures if f.resource_type != "spc"]  # SPC: its own table below
        if not listed:
            return
        table = Table(box=None, header_style="bold")
        for column in ("node", "status", "message"):
            table.add_column(column)
        for failure in listed:
            table.add_row(failure.unique_id, f"[red]{failure.status}[/]", failure.message)
        self.console.print(table)

    def spc(self, env: str, found: Sequence[MetricSeries], *, detail: bool) -> None:
        SpcTerminalReporter(self.console).series(env, found, detail=detail)

    def refreshing(self, env: str) -> AbstractContextManager[NodeCallback]:
        """A live status line while releasekit reads sources and dbt writes and tests."""
        return node_progress(self.console, f"refreshing {env}")

    def refresh(self, result: RefreshResult) -> None:
        RefreshTerminalReporter(self.console).refresh(result)

    def rollback(self, result: RollbackResult) -> None:
        self.console.print(
            f"[bold green]✔ {result.env} rolled back[/] from release {result.from_release} to "
            f"release {result.to_release} (commit {short(result.git_sha)}): "
            + (
                f"{result.changed} of {result.views} views switched, nothing built."
                if result.changed
                else "no view changed (both releases serve the same relations); the marker records "
                f"release {result.to_release}, nothing built."
            )
        )
        if result.hold is not None:
            self.console.print(
                f"{result.env} is held: `releasekit sync {result.env}` leaves it alone until its branch "
                f"brings a dbt project other than commit {short(result.hold.from_commit)}'s "
                f"(`sync {result.env} --force` to deploy it anyway); a deploy or promotion of "
                f"{result.env} ends the hold.",
                highlight=False,
            )

    def releases(self, env: str, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            self.console.print(f"No releases recorded for {env} yet.")
            return
        table = Table(title=f"Ledger of {env}", header_style="bold")
        for column in ("#", "release", "kind", "outcome", "at", "commit", "built", "reused", "who", "notes"):
            table.add_column(column)
        for e in _settled(entries):
            colour = {"succeeded": "green", "failed": "red"}.get(e.outcome, "yellow")
            table.add_row(
                str(e.seq),
                str(e.release_id),
                e.kind,
                f"[{colour}]{e.outcome}[/]",
                e.at.replace("T", " ")[:16],
                short(e.git_sha),
                str(len(e.built)),
                str(len(e.reused)),
                e.who.split(" <")[0],
                escape(_entry_notes(e)),
            )
        self.console.print(table)

    def unlocked(self, info: LockInfo) -> None:
        self.console.print(
            f"[bold green]✔ {escape(info.env)} is unlocked[/]: cleared lock {info.id} of "
            f"{escape(info.owner)} (pid {info.pid} on {escape(info.host)}, since {info.since}).",
            highlight=False,
        )

    def status(self, statuses: Sequence[EnvironmentStatus]) -> None:
        """One row per environment; a "data as of" column (the oldest data it serves) when
        some environment serves data read from sources."""
        data = {s.env: oldest_data(s.live.models.values()) if s.live else "-" for s in statuses}
        dated = any(value != "-" for value in data.values())
        table = Table(title="Environments", header_style="bold")
        columns = ("environment", "schema", "live release", "commit", "since")
        for column in (*columns, *(("data as of",) if dated else ()), "branch", "git", "warehouse"):
            table.add_column(column)
        for s in statuses:
            live = s.live
            branch = f"{s.branch} {short(s.branch_head)}" if s.branch and s.branch_head else (s.branch or "-")
            table.add_row(
                s.env,
                s.schema,
                str(live.release_id) if live else "-",
                short(live.git_sha) if live else "-",
                live.at.replace("T", " ")[:16] if live else "-",
                *((data[s.env],) if dated else ()),
                branch,
                _git_cell(s),
                _warehouse_cell(s),
            )
        self.console.print(table)
        for s in statuses:
            for found in (*s.git_drift, *s.warehouse_drift, *_notes(s)):
                self.console.print(f"  {s.env}: {escape(found)}", highlight=False)

    def data_versions(self, status: EnvironmentStatus) -> None:
        RefreshTerminalReporter(self.console).data_versions(status)

    def gc(self, results: Sequence[GcResult]) -> None:
        for r in results:
            verb = "would drop" if r.dry_run else "dropped"
            self.console.print(
                f"[bold]{r.physical_schema}[/]: {verb} {len(r.dropped)} relation(s), kept {r.kept}."
            )
            for name in r.dropped:
                self.console.print(f"  - {name}")
            for name, readers in r.held.items():
                self.console.print(
                    f"  [yellow]kept[/] {name}: unused, but read by {', '.join(readers)}; drop or repoint "
                    "those to an environment's views, and the next gc reclaims it",
                    highlight=False,
                )
            for problem in r.blocked:
                self.console.print(
                    f"  [yellow]kept everything[/]: a ledger does not read, so gc cannot tell what it "
                    f"serves: {problem}; restore that document from a backup, and the next gc reclaims "
                    "what is unused",
                    highlight=False,
                )

    def waiting(self, why: str) -> None:
        self.console.print(f"[yellow]waiting:[/] {why}; releasekit goes on when it is free", highlight=False)

    def env_up(self, result: UpResult) -> None:
        r = result.record
        if result.rebased:
            self.console.print(
                f"[bold green]✔ {r.branch}[/] rebased in [cyan]{r.schema}[/]: {result.views} views onto "
                f"{r.base} release {r.base_release} (its current code and data); the branch's own changes "
                "are built on it by the next deploy or check."
            )
        elif result.created:
            self.console.print(
                f"[bold green]✔ {r.branch}[/] is up in schema [cyan]{r.schema}[/]: {result.views} views onto "
                f"{r.base} release {r.base_release}; nothing built, no data copied."
            )
        else:
            self.console.print(
                f"{r.branch} is already up in schema [cyan]{r.schema}[/] (release {result.release_id})."
            )
        self.console.print(f"  deploy your changes there with: releasekit deploy {_shell_word(r.branch)}")

    def env_down(self, result: DownResult) -> None:
        r = result.record
        what = "dropped" if result.schema_dropped else "was already gone"
        self.console.print(
            f"[bold green]✔ {r.branch}[/]: schema [cyan]{r.schema}[/] {what}; its registry record is "
            "removed. `releasekit gc` reclaims the physical tables only it used."
        )

    def env_list(self, statuses: Sequence[BranchStatus]) -> None:
        if not statuses:
            self.console.print("No branch environments. Bring one up with `releasekit env up`.")
            return
        table = Table(title="Branch environments", header_style="bold")
        for column in ("branch", "schema"):
            # Names are typed back (env down NAME): they wrap whole, never cut short.
            table.add_column(column, overflow="fold", min_width=8)
        for column in ("base", "live", "created", "expires", "git branch"):
            table.add_column(column)
        for s in statuses:
            r = s.record
            expires = (
                "pinned" if r.pinned else r.expires_at[:10] + (" [red](expired)[/]" if s.expired else "")
            )
            table.add_row(
                Text(r.branch),  # a branch name is text, never markup
                Text(r.schema),
                f"{r.base} #{r.base_release}",
                str(s.live_release or "-"),
                r.created_at[:10],
                expires,
                "exists" if s.branch_exists else "[red]gone[/]",
            )
        self.console.print(table)
        for s in statuses:
            if s.unreadable:
                self.console.print(
                    f"[yellow]{s.record.branch}[/]: its ledger does not read ({s.unreadable}); `env gc` "
                    "leaves it: restore that document from a backup",
                    highlight=False,
                )

    def env_gc(self, dropped: Sequence[BranchStatus], dry_run: bool) -> None:
        verb = "would drop" if dry_run else "dropped"
        self.console.print(f"{verb} {len(dropped)} branch environment(s).")
        for s in dropped:
            why = "its branch is gone" if not s.branch_exists else "it expired"
            self.console.print(f"  - {s.record.branch} (schema {s.record.schema}): {why}")

    def check(self, report: CheckReport) -> None:
        CheckTerminalReporter(self.console).check(report)

    def chapter(self, number: int, title: str, text: str) -> None:
        self.console.print()
        self.console.print(Rule(f"[bold]{number}. {title}[/]", align="left"))
        self.console.print(text)

    def note(self, text: str) -> None:
        """A narrated flow's own words between results (the quickstart's)."""
        self.console.print(text)

    def done(self, text: str) -> None:
        """The end of a narrated flow (the quickstart): what was shown, and what to try next."""
        self.console.print()
        self.console.print(Rule("[bold green]Done[/]", align="left"))
        self.console.print(text)

    def init(self, result: InitResult) -> None:
        for path in result.written:
            self.console.print(f"[green]wrote[/] {path}")
        self.console.print(
            "Next: commit these files, then run `releasekit plan dev` and `releasekit deploy dev`."
        )


def _entry_notes(entry: LedgerEntry) -> str:
    """A forced deploy, a rollback's hold, the deploy that ended one, or what a refresh read."""
    notes = ["forced"] if entry.forced else []
    if entry.refresh:
        sources = entry.refresh.get("sources", {})
        changed = [s.get("name", uid) for uid, s in sources.items() if s.get("before") != s.get("after")]
        notes.append(f"data of release {entry.refresh.get('from_release')}: " + (", ".join(changed) or "-"))
    action = entry.hold.get("action")
    if action == "hold":
        notes.append("holds sync" if entry.kind == "rollback" else "keeps the hold")
    elif action == "lift":
        notes.append(f"ends hold ({entry.hold.get('by')})")
    return ", ".join(notes)


def _git_cell(status: EnvironmentStatus) -> str:
    if status.branch and status.branch_head is None:
        return "[yellow]no branch[/]"  # nothing to be in sync with
    if status.git_drift:
        return "[yellow]drift[/]"
    if status.hold:
        return "[yellow]held[/]"
    return "[green]in sync[/]" if status.live else "-"


def _warehouse_cell(status: EnvironmentStatus) -> str:
    if status.warehouse_drift:
        return "[red]drift[/]"
    return "[green]in sync[/]" if status.live else "-"  # serving nothing, it is in sync with nothing


def _notes(status: EnvironmentStatus) -> list[str]:
    """What the live release owes to a forced deploy, and a rollback's hold."""
    notes = []
    forced = status.forced
    if forced:
        who = str(forced.get("who", "?")).split(" <")[0]
        commit = short(str(forced.get("commit", "")))
        notes.append(f"forced deploy of {commit} by {who}: {forced.get('reason')}")
    hold = status.hold
    if hold is not None:
        notes.append(
            f"held since {hold.at.replace('T', ' ')[:16]} by {hold.who.split(' <')[0]}: rolled back from "
            f"release {hold.from_release} ({short(hold.from_commit)}) to release {hold.to_release}; "
            f"`releasekit sync {status.env}` leaves it alone until {status.branch or 'its branch'} brings "
            f"another dbt project (or --force); a deploy or promotion ends the hold"
        )
    return notes


def _settled(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """Hide a `switching` announcement once a later entry settles the same release."""
    shown = []
    for index, entry in enumerate(entries):
        later = entries[index + 1 :]
        if entry.outcome == "switching" and any(e.release_id == entry.release_id for e in later):
            continue
        shown.append(entry)
    return shown


def _shell_word(text: str) -> str:
    """Quote a branch name for a command line the user may paste."""
    import shlex

    return shlex.quote(text)
