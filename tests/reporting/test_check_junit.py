from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings

from releasekit.checks.report import CheckReport, CheckResult
from releasekit.reporting.junit import to_junit_xml
from tests.support.check_reports import (
    HOSTILE,
    big_report,
    failed_report,
    lint_check,
    lint_finding,
    make_report,
    passed_report,
    reports,
    warned_report,
)


def parsed(report: CheckReport) -> ET.Element:
    root = ET.fromstring(to_junit_xml(report))
    assert_standard_structure(root)
    return root


def assert_standard_structure(root: ET.Element) -> None:
    """<testsuites> of <testsuite>s of <testcase>s, every count matching what it holds."""
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [child.tag for child in root] == ["testsuite"] * len(suites)
    for suite in suites:
        cases = suite.findall("testcase")
        assert {child.tag for child in suite} <= {"properties", "testcase"}
        assert int(suite.get("tests", "")) == len(cases)
        assert int(suite.get("failures", "")) == sum(1 for case in cases if case.find("failure") is not None)
        assert int(suite.get("skipped", "")) == sum(1 for case in cases if case.find("skipped") is not None)
        assert suite.get("errors") == "0"
        for case in cases:
            assert case.get("classname") == suite.get("name")
            assert float(case.get("time", "")) >= 0
            assert len([c for c in case if c.tag in ("failure", "skipped", "error")]) <= 1
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key, "")) == sum(int(suite.get(key, "")) for suite in suites)


def suite(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f"testsuite[@name='releasekit.{name}']")
    assert found is not None
    return found


def case(root: ET.Element, check: str, name: str) -> ET.Element:
    found = suite(root, check).find(f"testcase[@name='{name}']")
    assert found is not None, name
    return found


def test_a_suite_per_check_a_testcase_per_case_and_per_breaking_change() -> None:
    root = parsed(failed_report())
    assert [s.get("name") for s in root] == [f"releasekit.{n}" for n in ("lint", "build", "logic", "diff")]
    # The failed model (margins) has no case of its own in the report: it gets a testcase.
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("8", "5", "1")
    assert suite(root, "lint").get("tests") == "2"
    failure = case(root, "build", "not_null_orders_id").find("failure")
    assert failure is not None and failure.get("message") == "Got 3 results"
    assert case(root, "build", "unique_orders_id").find("failure") is None
    breaking = case(root, "diff", "breaking-change: orders").find("failure")
    assert breaking is not None and breaking.get("message") == "column status removed, read by revenue"


def test_a_failed_lint_file_carries_its_findings() -> None:
    failure = case(parsed(failed_report()), "lint", "models/orders.sql").find("failure")
    assert failure is not None and failure.get("type") == "LT01"
    assert failure.text is not None
    assert failure.text.splitlines() == [
        "models/orders.sql:3:5: LT01: Trailing whitespace. (error)",
        "models/orders.sql:9:5: LT01: Trailing whitespace. (error)",
    ]


def test_warnings_are_skipped_not_failed() -> None:
    root = parsed(failed_report())
    logic = case(root, "logic", "revenue_is_positive")
    skipped = logic.find("skipped")
    assert logic.find("failure") is None and skipped is not None
    assert skipped.get("message") == "warning: 2 days"
    assert "2 days with negative revenue" in (logic.findtext("system-out") or "")
    warned = parsed(warned_report())
    assert (warned.get("failures"), suite(warned, "lint").get("skipped")) == ("0", "1")


def test_a_check_not_run_is_one_skipped_testcase_saying_why() -> None:
    skipped = case(parsed(warned_report()), "diff", "diff").find("skipped")
    assert skipped is not None and skipped.get("message") == "skipped: nothing changed"


def test_a_passed_report_has_no_failures_and_keeps_timings() -> None:
    root = parsed(passed_report())
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "0", "0")
    assert case(root, "lint", "lint_case").get("time") == "0.500"
    assert suite(root, "lint").get("time") == "1.500"
    assert root.get("time") == "41.250"


def test_properties_name_the_environment_and_the_verdict() -> None:
    properties = {
        p.get("name"): p.get("value") for p in suite(parsed(failed_report()), "lint").iter("property")
    }
    assert properties["env"] == "feature/orders-v2" and properties["base"] == "prod"
    assert properties["verdict"] == "FAILED: lint, build, diff"
    assert properties["release_id"] == "7"


def test_markup_and_control_characters_survive_as_text() -> None:
    message = HOSTILE + " \x1b[31mred\x1b[0m \x00 end"
    root = parsed(make_report([lint_check([lint_finding(message=message)])]))
    failure = case(root, "lint", "models/orders.sql").find("failure")
    assert failure is not None and failure.text is not None
    assert "<script>alert(1)</script>" in failure.text
    assert "\ufffd[31mred" in failure.text and "\ufffd end" in failure.text


def test_a_failed_check_without_findings_still_shows_a_failure() -> None:
    report = make_report([CheckResult("build", "failed", "error", "dbt could not build orders")])
    failure = case(parsed(report), "build", "build").find("failure")
    assert failure is not None and failure.get("message") == "dbt could not build orders"


def test_a_big_report_stays_consistent() -> None:
    root = parsed(big_report(findings=5_000, impacts=10))
    assert suite(root, "lint").get("tests") == "500"


@settings(max_examples=40, deadline=None)
@given(reports())
def test_any_report_gives_well_formed_consistent_junit(report: CheckReport) -> None:
    root = parsed(report)
    for check in report.checks:
        fails = check.status == "failed" and check.severity == "error"
        assert (int(suite(root, check.name).get("failures", "")) > 0) == fails
