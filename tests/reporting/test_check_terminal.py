from __future__ import annotations

import io

from rich.console import Console

from releasekit.checks.report import CheckReport
from releasekit.reporting.check_terminal import CheckTerminalReporter
from tests.support.check_reports import (
    big_report,
    failed_report,
    lint_check,
    lint_finding,
    make_report,
    passed_report,
    warned_report,
)


def printed(report: CheckReport, max_rows: int = 15) -> str:
    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    CheckTerminalReporter(console, max_rows=max_rows).check(report)
    return console.export_text()


def test_a_failed_report_shows_each_check_and_ends_in_the_verdict() -> None:
    text = printed(failed_report())
    assert text.splitlines()[-1] == "✘ FAILED: lint, build, diff (41.2 s)"
    assert "Checks of feature/orders-v2 (release 7, commit 0123456) against prod (commit fedcba9)" in text
    assert "✘ lint: 2 files linted, 3 violations" in text
    assert "models/orders.sql:9:5" in text and "LT01" in text
    assert "not_null_orders_id" in text and "Got 3 results, configured to fail if != 0" in text
    [test_row] = [line for line in text.splitlines() if "not_null_orders_id" in line and "Got 3" in line]
    [model_row] = [line for line in text.splitlines() if "division by zero" in line]
    assert " data test " in test_row and " model " in model_row  # a test is a test, a model a model
    assert "✔ logic: 2 logic tests, 1 warning" in text and "revenue_is_positive" in text
    assert "breaking-change" in text
    assert "note: logic tests ran against a sample" in text


def test_the_impact_table_shows_columns_rows_and_what_breaks() -> None:
    line = next(line for line in printed(failed_report()).splitlines() if "1,000 → 990" in line)
    for part in ("breaking", "-status, ~total", "1,000 → 990", "+0 -10 ~25", "revenue"):
        assert part in line, part
    assert "new_model" in printed(failed_report())


def test_passed_and_warned_verdicts() -> None:
    assert printed(passed_report()).splitlines()[-1] == "✔ PASSED (41.2 s)"
    warned = printed(warned_report())
    assert warned.splitlines()[-1] == "⚠ PASSED with warnings: lint (41.2 s)"
    assert "⚠ lint (warn only): 1 files linted, 1 violations" in warned
    assert "○ diff: skipped: nothing changed" in warned


def test_tables_are_capped_with_a_count_of_the_rest() -> None:
    text = printed(big_report(findings=100, impacts=30), max_rows=5)
    assert "… and 95 more findings" in text
    assert "… and 25 more changed models" in text
    assert "… and 295 more notes" in text
    assert len(text.splitlines()) < 40


def test_project_text_is_printed_as_written_not_as_markup() -> None:
    message = "[red]not markup[/red] [bold]"
    text = printed(make_report([lint_check([lint_finding(message=message)])]))
    assert message in text


def checked(console: Console) -> None:
    with CheckTerminalReporter(console).checking("feature/x") as on_node:
        on_node("model.shop.orders", "success")
        on_node("odd", "error")


def test_the_progress_line_names_a_model_by_its_name() -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=True, color_system=None)
    with CheckTerminalReporter(console).checking("feature/x") as on_node:
        on_node("model.shop.orders", "success")
    assert "checking feature/x: 1 node(s) done, last orders (success)" in out.getvalue()


def test_the_progress_line_counts_nodes_and_names_the_last() -> None:
    out = io.StringIO()
    checked(Console(file=out, width=160, force_terminal=True, color_system=None))
    shown = out.getvalue()
    # The line shows the latest count; an id without dots is shown as it is.
    assert "checking feature/x: 2 node(s) done, last odd (error)" in shown
    assert shown.endswith("\x1b[2K")  # and it is erased when the check ends: it was a status line


def test_the_progress_line_stays_out_of_a_log() -> None:
    out = io.StringIO()
    checked(Console(file=out, width=160))  # not a terminal: a CI log, a pipe
    assert out.getvalue() == ""
