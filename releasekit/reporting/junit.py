"""A `CheckReport` as JUnit XML, the format CI systems show as test results.

One <testsuite> per check (`releasekit.lint`, `releasekit.build`, ...) inside one
<testsuites>. One <testcase> per `Case` the check ran (a linted file, a dbt test, a logic
test), carrying the findings that belong to it, plus one per finding no case accounts for
(a breaking change, a build error outside any test): a failure is never invisible. A check
that did not run is one skipped testcase saying why.

Warnings are written as <skipped message="warning: …"> with the details in <system-out>,
not as <failure>: a failure that the environment's policy lets pass (the check did not fail
at `error` severity, or every finding of the case is at `warn`) must not turn the CI run's
test view red while `releasekit check` exits 0. The other way round too: a check that fails
the verdict always shows at least one <failure>. GitLab's test report and the common GitHub JUnit
actions (dorny/test-reporter, mikepenz/action-junit-report) list skipped tests apart and
show their message; <system-out> alone would show the case as a plain pass and hide it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from releasekit.checks.report import Case, CheckReport, CheckResult, Finding

Outcome = Literal["passed", "failed", "warned", "skipped"]
# Characters XML 1.0 cannot hold at all, not even escaped (ANSI escapes from dbt, NUL, ...).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class _Testcase:
    name: str
    seconds: float
    path: str | None
    outcome: Outcome
    message: str = ""
    kind: str = ""  # the failure's type: a lint rule, a test name, "breaking-change"
    details: str = ""


def to_junit_xml(report: CheckReport) -> str:
    """The whole report as an indented JUnit XML document."""
    root = junit_element(report)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def junit_element(report: CheckReport) -> ET.Element:
    suites = [_suite(report, check) for check in report.checks]
    root = ET.Element("testsuites", name="releasekit check", time=_seconds(report.seconds))
    _sum_counts(root, suites)
    root.extend(suites)
    return root


def _suite(report: CheckReport, check: CheckResult) -> ET.Element:
    testcases = _testcases(check)
    suite = ET.Element(
        "testsuite",
        name=f"releasekit.{check.name}",
        time=_seconds(check.seconds),
        timestamp=_text(report.started_at),
    )
    _count_testcases(suite, testcases)
    suite.append(_properties(report, check))
    suite.extend(_testcase_element(check, testcase) for testcase in testcases)
    return suite


_COUNTS = ("tests", "failures", "errors", "skipped")


def _count_testcases(suite: ET.Element, testcases: Sequence[_Testcase]) -> None:
    outcomes = [testcase.outcome for testcase in testcases]
    counts = (
        len(outcomes),
        outcomes.count("failed"),
        0,
        outcomes.count("warned") + outcomes.count("skipped"),
    )
    for key, count in zip(_COUNTS, counts, strict=True):
        suite.set(key, str(count))


def _sum_counts(root: ET.Element, suites: Sequence[ET.Element]) -> None:
    for key in _COUNTS:
        root.set(key, str(sum(int(suite.get(key, "0")) for suite in suites)))


def _properties(report: CheckReport, check: CheckResult) -> ET.Element:
    properties = ET.Element("properties")
    values = {
        "env": report.env,
        "base": report.base,
        "git_sha": report.git_sha,
        "base_sha": report.base_sha,
        "release_id": "" if report.release_id is None else str(report.release_id),
        "status": check.status,
        "severity": check.severity,
        "summary": check.summary,
        "verdict": report.verdict,
    }
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=_text(value))
    return properties


def _testcase_element(check: CheckResult, testcase: _Testcase) -> ET.Element:
    element = ET.Element("testcase", classname=f"releasekit.{check.name}", name=_text(testcase.name))
    element.set("time", _seconds(testcase.seconds))
    if testcase.path:
        element.set("file", _text(testcase.path))
    if testcase.outcome == "failed":
        failure = ET.SubElement(
            element, "failure", message=_text(testcase.message), type=_text(testcase.kind)
        )
        failure.text = _text(testcase.details or testcase.message)
    elif testcase.outcome in ("warned", "skipped"):
        prefix = "warning: " if testcase.outcome == "warned" else ""
        ET.SubElement(element, "skipped", message=_text(prefix + testcase.message))
        if testcase.details:
            ET.SubElement(element, "system-out").text = _text(testcase.details)
    return element


def _testcases(check: CheckResult) -> list[_Testcase]:
    if check.status == "skipped" and not check.cases and not check.findings:
        return [_Testcase(check.name, check.seconds, None, "skipped", check.summary)]
    claimed: set[int] = set()
    testcases = []
    for case in check.cases:
        mine = [i for i, finding in enumerate(check.findings) if _belongs(finding, case)]
        claimed.update(mine)
        testcases.append(_from_case(check, case, [check.findings[i] for i in mine]))
    loose = (finding for i, finding in enumerate(check.findings) if i not in claimed)
    testcases += [_from_finding(check, finding) for finding in loose]
    if _fails(check) and not any(testcase.outcome == "failed" for testcase in testcases):
        # The verdict fails on this check: the CI test view must show a failure too.
        testcases.append(_Testcase(check.name, check.seconds, None, "failed", check.summary, check.name))
    return testcases


def _fails(check: CheckResult) -> bool:
    return check.status == "failed" and check.severity == "error"


def _belongs(finding: Finding, case: Case) -> bool:
    if finding.code == case.name:
        return True
    return finding.check == "lint" and finding.path is not None and finding.path in (case.path, case.name)


def _from_case(check: CheckResult, case: Case, findings: Sequence[Finding]) -> _Testcase:
    failing = not case.passed or bool(findings)
    warn = not _fails(check) or (bool(findings) and all(f.severity == "warn" for f in findings))
    outcome: Outcome = "passed" if not failing else "warned" if warn else "failed"
    message = case.message or (findings[0].message if findings else "")
    kind = findings[0].code if findings else check.name
    details = "\n".join(_finding_line(finding) for finding in findings)
    return _Testcase(case.name, case.seconds, case.path, outcome, message, kind, details)


def _from_finding(check: CheckResult, finding: Finding) -> _Testcase:
    warn = not _fails(check) or finding.severity == "warn"
    about = finding.subject or finding.path
    name = f"{finding.code}: {about}" if about else finding.code
    outcome: Outcome = "warned" if warn else "failed"
    return _Testcase(name, 0.0, finding.path, outcome, finding.message, finding.code, _finding_line(finding))


def _finding_line(finding: Finding) -> str:
    where = ":".join(str(part) for part in (finding.path, finding.line, finding.column) if part is not None)
    subject = f" [{finding.subject}]" if finding.subject and finding.subject != finding.path else ""
    return f"{where + ': ' if where else ''}{finding.code}{subject}: {finding.message} ({finding.severity})"


def _seconds(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}"


def _text(value: str) -> str:
    """Text XML can hold: characters XML 1.0 forbids become U+FFFD (escaping is ElementTree's)."""
    return _NOT_XML.sub("\ufffd", value)
