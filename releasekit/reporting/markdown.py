"""A `CheckReport` as one Markdown document, for a PR comment or a CI job summary.

Layout: a hidden marker (`MARKER`: a CI job finds its own comment by it and updates it), a
header with the verdict, a table of the four checks, then a section per kind of finding:
breaking changes, lint, tests, logic tests, impact, data diff, notes, changed files. A long
section shows its first rows and folds the rest into <details>.

Size: GitHub refuses comments over 65,536 characters. Sections share `limit` max-min
fairly, by weight (a small section gets all it needs, the large ones split the rest, the
findings with twice the claim of the notes and changed files); a section that does not fit
keeps as many whole rows as fit and says how many it left out. A table or a tag is never
cut.

Escaping: every value that comes from the project or the user (messages, paths, names,
branch names) goes through `escape`: `&<>` become entities, so no HTML gets in, and
Markdown punctuation is backslash-escaped, so a `|` cannot split a cell nor a `*` start
emphasis. Values are cut to `MAX_CELL` characters first, so one message cannot fill it all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from releasekit.checks.report import CheckReport, CheckResult, Finding, ModelImpact, node_kind

MARKER = "<!-- releasekit-check -->"
MAX_CHARS = 65_000
VISIBLE_ROWS = 10  # rows shown before the rest folds into <details>
MAX_CELL = 300  # characters of one value, before escaping
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"} | {c: "\\" + c for c in "\\`*_[]|~#!"})
_LINE_START = re.compile(r"^(\d*)([-+.)])")
_CHECK_TITLES = {
    "lint": "Lint",
    "build": "Build and tests",
    "logic": "Logic tests",
    "diff": "Breaking changes",
}
_CLASS_ORDER = {"breaking": 0, "non-breaking": 1, "metadata-only": 2}


@dataclass(frozen=True)
class _Block:
    """A section: a heading and rows, a table when it has columns, a list otherwise."""

    title: str
    noun: str  # what a row is, plural: "lint findings"
    rows: Sequence[str]
    columns: Sequence[str] = ()
    weight: int = 2  # its claim on the space when not all fits: findings before lists


def to_markdown(report: CheckReport, *, limit: int = MAX_CHARS) -> str:
    """The report as Markdown of at most `limit` characters."""
    head = _header(report) + _summary_table(report)
    blocks = [block for block in _blocks(report) if block.rows]
    needs = [len(_layout(block, len(block.rows))) for block in blocks]
    shares = _allocate(needs, [block.weight for block in blocks], limit - len(head))
    return head + "".join(_render(block, share) for block, share in zip(blocks, shares, strict=True))


def escape(text: str, limit: int = MAX_CELL) -> str:
    """`text` safe inside a table cell or a line: one line, no HTML, no Markdown markup."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.translate(_ESCAPES)
    # At the start of a list item, `- x`, `+ x` or `1. x` would open a nested list.
    return _LINE_START.sub(r"\1\\\2", text)


def code(text: str) -> str:
    # <code> rather than backticks: inside backticks escapes are not read, and a ` would end it.
    return f"<code>{escape(text)}</code>" if text else ""


def _header(report: CheckReport) -> str:
    release = "no release" if report.release_id is None else f"release {report.release_id}"
    files = f" · {len(report.changed_files):,} changed files" if report.changed_files else ""
    return (
        f"{MARKER}\n## {_verdict_emoji(report)} releasekit check: {escape(report.verdict)}\n\n"
        f"**{code(report.env)}** ({release}, commit {code(_short(report.git_sha))}) against "
        f"**{code(report.base)}** (commit {code(_short(report.base_sha))}){files} · "
        f"{report.seconds:.1f} s · started {escape(report.started_at)}\n\n"
    )


def _summary_table(report: CheckReport) -> str:
    rows = [
        _row([c.name, _status(c), c.severity, escape(c.summary), f"{c.seconds:.1f} s"]) for c in report.checks
    ]
    return _table_head(["check", "result", "policy", "summary", "time"]) + _lines(rows) + "\n"


def _blocks(report: CheckReport) -> list[_Block]:
    return [
        _breaking_block(report),
        *(_findings_block(check) for check in report.checks if check.name in ("lint", "build", "logic")),
        _impact_block(report.impacts),
        _diff_block(report.impacts),
        _Block("Notes", "notes", [f"- {escape(note)}" for note in report.notes], weight=1),
        _Block("Changed files", "changed files", [f"- {code(p)}" for p in report.changed_files], weight=1),
    ]


def _findings_block(check: CheckResult) -> _Block:
    title = f"{_emoji(check)} {_CHECK_TITLES[check.name]}: {_count(check.findings, 'finding')}"
    noun = {"lint": "lint findings", "build": "build and test failures", "logic": "failed logic tests"}[
        check.name
    ]
    if check.name == "lint":
        rows = [_row([code(_location(f)), code(f.code), escape(f.message)]) for f in check.findings]
        return _Block(title, noun, rows, ["location", "rule", "message"])
    if check.name == "build":
        rows = [_row([code(f.code), node_kind(f.subject), escape(f.message)]) for f in check.findings]
        return _Block(title, noun, rows, ["failed", "kind", "message"])
    rows = [_row([code(f.code), f.severity, escape(f.message)]) for f in check.findings]
    return _Block(title, noun, rows, ["logic test", "severity", "message"])


def _breaking_block(report: CheckReport) -> _Block:
    """The diff check's findings, with the dependants each breaks, then breaking impacts it did not name."""
    diff = report.check("diff")
    findings: Sequence[Finding] = diff.findings if diff else ()
    impacts = {impact.model: impact for impact in report.impacts}
    rows = [_breaking_row(f, impacts.get(f.subject or "")) for f in findings]
    named = {f.subject for f in findings}
    rows += [
        _row([code(i.model), _names(i.breaking_because), escape("; ".join(i.reasons))])
        for i in report.impacts
        if i.classification == "breaking" and i.model not in named
    ]
    title = f"{_emoji(diff) + ' ' if diff else ''}Breaking changes: {len(rows):,}"
    return _Block(title, "breaking changes", rows, ["model", "breaks", "why"])


def _breaking_row(finding: Finding, impact: ModelImpact | None) -> str:
    breaks = _names(impact.breaking_because) if impact else ""
    return _row([code(finding.subject or finding.path or ""), breaks, escape(finding.message)])


def _impact_block(impacts: Sequence[ModelImpact]) -> _Block:
    rows = [_impact_row(i) for i in sorted(impacts, key=lambda i: _CLASS_ORDER[i.classification])]
    columns = ["model", "change", "why", "columns", "downstream", "exposures"]
    return _Block(f"Impact: {_count(impacts, 'changed model')}", "impacted models", rows, columns)


def _impact_row(i: ModelImpact) -> str:
    why = escape("; ".join(i.reasons))
    return _row(
        [code(i.model), i.classification, why, escape(_columns(i)), _names(i.downstream), _names(i.exposures)]
    )


def _diff_block(impacts: Sequence[ModelImpact]) -> _Block:
    diffed = [i for i in impacts if i.rows or i.rows_before is not None or i.rows_after is not None]
    columns = ["model", "rows", "added", "removed", "changed", "key", "examples"]
    return _Block(
        f"Data diff: {_count(diffed, 'model')}", "diffed models", [_diff_row(i) for i in diffed], columns
    )


def _diff_row(i: ModelImpact) -> str:
    counts = f"{_rows(i.rows_before)} → {_rows(i.rows_after)}"
    if i.rows is None:
        return _row([code(i.model), counts, "", "", "", "", ""])
    changes = [f"{n:,}" for n in (i.rows.added, i.rows.removed, i.rows.changed)]
    return _row([code(i.model), counts, *changes, _names(i.rows.key), escape(", ".join(i.rows.examples))])


def _render(block: _Block, budget: int) -> str:
    """The block in at most `budget` characters: as many whole rows as fit, and how many did not."""
    full = _layout(block, len(block.rows))
    if len(full) <= budget:
        return full
    # Below all rows, one more row always makes the text longer: search for the most that fit.
    low, high = 0, len(block.rows) - 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if len(_layout(block, middle)) <= budget else (low, middle - 1)
    text = _layout(block, low)
    return text if len(text) <= budget else ""


def _layout(block: _Block, shown: int) -> str:
    """The block with its first `shown` rows: the first few open, the others folded."""
    head = _table_head(block.columns)
    visible, folded = block.rows[: min(shown, VISIBLE_ROWS)], block.rows[VISIBLE_ROWS:shown]
    text = f"### {block.title}\n\n" + (head + _lines(visible) if visible else "")
    if folded:
        summary = f"<summary>{len(folded):,} more {block.noun}</summary>"
        text += f"\n<details>{summary}\n\n{head}{_lines(folded)}\n</details>\n"
    left = len(block.rows) - shown
    return text + "\n" + (_left_out(left, block.noun) if left else "")


def _allocate(needs: Sequence[int], weights: Sequence[int], total: int) -> list[int]:
    """Weighted max-min fair shares of `total`: needs below their share are met in full, and
    what they leave is split by weight among the others."""
    shares = [0] * len(needs)
    left, weight_left = total, sum(weights)
    for index in sorted(range(len(needs)), key=lambda i: needs[i] / weights[i]):
        shares[index] = min(needs[index], max(left, 0) * weights[index] // weight_left)
        left -= shares[index]
        weight_left -= weights[index]
    return shares


def _table_head(columns: Sequence[str]) -> str:
    return _row(columns) + "\n" + _row(["---"] * len(columns)) + "\n" if columns else ""


def _lines(rows: Iterable[str]) -> str:
    return "".join(row + "\n" for row in rows)


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _left_out(count: int, noun: str) -> str:
    return f"… {count:,} more {noun} not shown\n\n"


def _status(check: CheckResult) -> str:
    word = "warned" if check.status == "failed" and check.severity == "warn" else check.status
    return f"{_emoji(check)} {word}"


def _emoji(check: CheckResult) -> str:
    if check.status == "failed":
        return "❌" if check.severity == "error" else "⚠️"
    return "✅" if check.status == "passed" else "⏭️"


def _verdict_emoji(report: CheckReport) -> str:
    if not report.passed:
        return "❌"
    return "⚠️" if any(check.status == "failed" for check in report.checks) else "✅"


def _location(finding: Finding) -> str:
    parts = (finding.path or finding.subject, finding.line, finding.column)
    return ":".join(str(part) for part in parts if part is not None)


def _columns(impact: ModelImpact) -> str:
    marks = {"added": "+", "removed": "-", "retyped": "~"}
    return ", ".join(
        f"{marks[c.change]}{c.column}" + (f" {c.before}→{c.after}" if c.change == "retyped" else "")
        for c in impact.columns
    )


def _names(names: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(code(name) for name in names[:shown]) + more


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items):,} {noun}{'' if len(items) == 1 else 's'}"


def _rows(count: int | None) -> str:
    return "-" if count is None else f"{count:,}"


def _short(sha: str) -> str:
    return sha[:7] + ("-dirty" if sha.endswith("-dirty") else "")
