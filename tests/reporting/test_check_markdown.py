from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from markdown_it import MarkdownIt

from releasekit.checks.report import CheckReport
from releasekit.reporting.markdown import MARKER, MAX_CELL, MAX_CHARS, escape, to_markdown
from tests.support.check_reports import (
    HOSTILE,
    IMPACTS,
    big_report,
    failed_report,
    lint_check,
    lint_finding,
    make_report,
    passed_report,
    reports,
    warned_report,
)

GITHUB_LIMIT = 65_536


def rendered(markdown: str) -> str:
    """The HTML GitHub-flavoured Markdown makes of it (raw HTML passes through, as on GitHub)."""
    html: str = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
    return html


def assert_tables_whole(markdown: str) -> None:
    """Every table renders with as many cells in each row as in its head."""
    html = rendered(markdown)
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        head = len(re.findall(r"<th[ >]", table))
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
            assert len(re.findall(r"<td[ >]", row)) == head, row


def assert_tags_balanced(markdown: str) -> None:
    for tag in ("details", "summary", "code"):
        assert markdown.count(f"<{tag}>") == markdown.count(f"</{tag}>"), tag


def test_a_failed_report_shows_every_section() -> None:
    text = to_markdown(failed_report())
    assert text.startswith(MARKER + "\n")
    assert "## ❌ releasekit check: FAILED: lint, build, diff" in text
    assert "<code>feature/orders\\-v2</code>" not in text  # `-` is not escaped: it reads as is
    assert "**<code>feature/orders-v2</code>** (release 7, commit <code>0123456</code>)" in text
    assert "against **<code>prod</code>** (commit <code>fedcba9</code>) · 2 changed files" in text
    for heading in (
        "Breaking changes: 1",
        "Lint: 3 findings",
        "Build and tests: 2 findings",
        "Logic tests: 1 finding",
    ):
        assert heading in text
    assert "| failed | kind | message |" in text
    assert "| <code>not\\_null\\_orders\\_id</code> | data test |" in text
    assert "| <code>margins</code> | model |" in text
    assert "### Impact: 3 changed models" in text
    assert "### Data diff: 3 models" in text
    assert "| <code>orders</code> | 1,000 → 990 | 0 | 10 | 25 | <code>order\\_id</code> |" in text
    assert "| \\-status, \\~total int→numeric |" in text
    assert "| logic | ⚠️ warned |" not in text  # logic passed: a warn finding alone does not fail it
    assert_tables_whole(text)
    assert_tags_balanced(text)


def test_the_verdict_emoji_follows_the_verdict() -> None:
    assert "## ✅ releasekit check: PASSED\n" in to_markdown(passed_report())
    warned = to_markdown(warned_report())
    assert "## ⚠️ releasekit check: PASSED with warnings: lint\n" in warned
    assert "| lint | ⚠️ warned | warn |" in warned


def test_a_passed_report_is_short_and_has_only_the_summary() -> None:
    text = to_markdown(passed_report())
    assert "###" not in text
    assert text.count("| ✅ passed |") == 4


def test_user_text_cannot_break_a_table_or_inject_html() -> None:
    finding = lint_finding(path="models/<b>evil</b>|x.sql", message=HOSTILE)
    impact = replace(IMPACTS[0], model="or|ders<script>", reasons=(HOSTILE,), breaking_because=("a|b",))
    report = make_report([lint_check([finding])], impacts=[impact], notes=[HOSTILE], env="feat/<img src=x>")
    text = to_markdown(report)
    html = rendered(text)
    assert "<script" not in html and "<img" not in html and "<b>evil" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<em>" not in html and "<del>" not in html and "<a " not in html
    assert_tables_whole(text)


def test_escape_keeps_one_line_and_cuts_long_values() -> None:
    assert escape("a\nb\t c") == "a b c"
    assert escape("x|y") == "x\\|y"
    assert len(escape("a" * 10_000)) == MAX_CELL
    assert escape("a" * 10_000).endswith("…")


def test_a_huge_report_stays_under_the_comment_limit_and_counts_what_it_left_out() -> None:
    report = big_report(findings=20_000, impacts=2_000)
    text = to_markdown(report)
    assert len(text) <= MAX_CHARS < GITHUB_LIMIT
    shown = len(re.findall(r"^\| <code>models/m\d+\.sql:\d+:5</code> \| <code>LT01</code>", text, flags=re.M))
    left_out = int(re.search(r"… ([\d,]+) more lint findings not shown", text)[1].replace(",", ""))  # type: ignore[index]
    assert shown > 10 and shown + left_out == 20_000
    assert re.search(r"… [\d,]+ more impacted models not shown", text)
    assert re.search(r"… [\d,]+ more breaking changes not shown", text)
    assert "### Notes" in text and "### Changed files" in text
    assert_tags_balanced(text)
    assert_tables_whole(text)


def test_every_section_keeps_a_fair_share_of_a_small_limit() -> None:
    text = to_markdown(big_report(findings=2_000, impacts=200), limit=12_000)
    assert len(text) <= 12_000
    for noun in ("lint findings", "impacted models", "diffed models", "notes", "changed files"):
        assert f"more {noun} not shown" in text, noun
    assert_tags_balanced(text)
    assert_tables_whole(text)


def test_long_sections_fold_into_details() -> None:
    findings = [lint_finding(line=i) for i in range(25)]
    text = to_markdown(make_report([lint_check(findings)]))
    assert "<details><summary>15 more lint findings</summary>" in text
    assert "not shown" not in text
    assert_tables_whole(text)


@settings(max_examples=40, deadline=None)
@given(reports())
def test_any_text_renders_to_whole_tables_without_html(report: CheckReport) -> None:
    text = to_markdown(report)
    html = rendered(text)
    allowed = {"p", "h2", "h3", "table", "thead", "tbody", "tr", "th", "td", "code", "strong", "ul", "li"}
    allowed |= {"details", "summary"}
    assert set(re.findall(r"<(\w+)", html)) <= allowed
    assert_tables_whole(text)
