"""What each step found, turned into report values (`CheckResult`): the step runs
elsewhere; here its raw outcome becomes findings, cases and a one-line summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from releasekit.checks.logic import LogicOutcome
from releasekit.checks.report import Case, CheckName, CheckResult, Finding, Severity
from releasekit.dbtcore.session import NodeResult
from releasekit.engine.deploy import DeployResult
from releasekit.engine.quality import Assessment
from releasekit.engine.quality import Finding as QualityFinding
from releasekit.lint.results import FileLint, LintRun
from releasekit.spc.model import RULES

# dbt node statuses that mean "did not hold" (a test's `warn` is dbt's own warning).
_FAILED = frozenset({"error", "fail", "runtime error"})
_WARNED = frozenset({"warn"})
_TEST_TYPES = frozenset({"test", "unit_test"})


def skipped(name: CheckName, severity: Severity, why: str) -> CheckResult:
    return CheckResult(name=name, status="skipped", severity=severity, summary=f"skipped: {why}")


def judged(
    name: CheckName, severity: Severity, summary: str, findings: Sequence[Finding], **kw: object
) -> CheckResult:
    failed = any(finding.severity == "error" for finding in findings) or (
        severity == "warn" and bool(findings)
    )
    return CheckResult(
        name=name,
        status="failed" if failed else "passed",
        severity=severity,
        summary=summary,
        findings=tuple(findings),
        **kw,  # type: ignore[arg-type]
    )


# --- lint ------------------------------------------------------------------------------------


def lint_result(run: LintRun, severity: Severity) -> CheckResult:
    findings = [finding for file in run.files for finding in _lint_findings(file, severity)]
    cases = [_lint_case(file) for file in run.files]
    counted = sum(1 for f in findings if f.severity == "error") if severity == "error" else len(findings)
    summary = f"{len(run.files)} file(s) linted ({run.dialect}), {counted} violation(s)"
    if run.skipped:
        summary += f", {len(run.skipped)} skipped"
    return judged("lint", severity, summary, findings, cases=tuple(cases), seconds=run.seconds)


def _lint_findings(file: FileLint, severity: Severity) -> list[Finding]:
    found = [
        Finding(
            check="lint",
            code=v.code,
            message=v.message,
            severity="warn" if v.warning else severity,
            path=v.path,
            line=v.line,
            column=v.column,
            subject=file.path,
        )
        for v in file.violations
    ]
    if file.error is not None:
        found.append(Finding("lint", "lint-error", file.error, severity, path=file.path, subject=file.path))
    return found


def _lint_case(file: FileLint) -> Case:
    first = next((v for v in file.violations if not v.warning), None)
    message = file.error or (f"{first.code} line {first.line}: {first.message}" if first else "")
    return Case("lint", file.path, file.passed, file.seconds, file.path, message)


# --- build and test --------------------------------------------------------------------------


def build_result(result: DeployResult, severity: Severity) -> CheckResult:
    plan = result.plan
    findings = [_build_finding(r, severity) for r in result.results if r.status in _FAILED | _WARNED]
    cases = [_build_case(r) for r in result.results if r.resource_type in _TEST_TYPES or r.status in _FAILED]
    tests = sum(1 for r in result.results if r.resource_type in _TEST_TYPES)
    if result.outcome == "noop":
        summary = f"nothing to build: the environment already serves this commit ({len(plan.steps)} models)"
    else:
        summary = (
            f"{len(plan.builds)} built, {len(plan.reuses)} reused, {tests} test(s) run, "
            f"{sum(1 for f in findings if f.severity == 'error')} failure(s)"
        )
    seconds = sum(r.seconds for r in result.results)
    return judged("build", severity, summary, findings, cases=tuple(cases), seconds=seconds)


def _node_name(result: NodeResult) -> str:
    parts = result.unique_id.split(".")
    if result.resource_type == "unit_test" and len(parts) >= 4:
        return f"{parts[-2]}::{parts[-1]}"  # model::test
    return parts[2] if len(parts) >= 3 else result.unique_id


def _build_finding(result: NodeResult, severity: Severity) -> Finding:
    warn = result.status in _WARNED
    what = "test" if result.resource_type in _TEST_TYPES else result.resource_type
    message = result.message.strip() or f"{what} {result.status}"
    if result.failures:
        message = (
            f"{message} ({result.failures} failing row(s))" if "fail" not in message.lower() else message
        )
    return Finding(
        check="build",
        code=_node_name(result),
        message=message,
        severity="warn" if warn else severity,
        path=result.path or None,
        subject=result.unique_id,
    )


def _build_case(result: NodeResult) -> Case:
    passed = result.status not in _FAILED
    message = "" if passed else (result.message.strip() or result.status)
    return Case("build", _node_name(result), passed, result.seconds, result.path or None, message)


# --- logic tests -----------------------------------------------------------------------------


def logic_result(outcomes: Sequence[LogicOutcome], severity: Severity, root: Path) -> CheckResult:
    """`root`: the folder finding paths are relative to (the repository's top)."""
    findings = [_logic_finding(o, severity, _relative(o.test.path, root)) for o in outcomes if not o.passed]
    cases = [
        Case(
            "logic",
            o.test.name,
            o.passed,
            o.seconds,
            _relative(o.test.path, root),
            "" if o.passed else _why(o),
        )
        for o in outcomes
    ]
    failing = sum(1 for o in outcomes if not o.passed)
    summary = f"{len(outcomes)} logic test(s), {failing} not holding" if outcomes else "no logic tests"
    seconds = sum(o.seconds for o in outcomes)
    return judged("logic", severity, summary, findings, cases=tuple(cases), seconds=seconds)


def _why(outcome: LogicOutcome) -> str:
    if outcome.error is not None:
        return f"could not run: {outcome.error}"
    shown = "; ".join(outcome.examples[:3])
    return f"{outcome.violations} violating row(s)" + (f", e.g. {shown}" if shown else "")


def _logic_finding(outcome: LogicOutcome, severity: Severity, path: str) -> Finding:
    test = outcome.test
    level: Severity = "warn" if "warn" in (test.severity, severity) else "error"
    message = _why(outcome) + (f" ({test.description})" if test.description else "")
    return Finding("logic", test.name, message, level, path=path, subject=test.name)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


# --- statistical process control (reported under the diff check) ---------------------------


def spc_findings(assessment: Assessment, base: str) -> list[Finding]:
    """One `spc-anomaly` finding per metric of a rebuilt model outside the base's limits."""
    return [
        Finding(
            check="diff",
            code="spc-anomaly",
            severity="error" if finding.severity == "error" else "warn",
            subject=finding.name,
            message=_spc_message(finding, base),
        )
        for finding in assessment.findings
    ]


def _spc_message(finding: QualityFinding, base: str) -> str:
    limits = finding.verdict.limits
    rules = "; ".join(RULES[rule] for rule in finding.verdict.rules)
    if limits is None:  # never: a verdict without limits breaks no rule
        return f"{finding.metric} = {finding.verdict.value:.6g}: {rules}"
    return (
        f"{finding.metric} = {finding.verdict.value:.6g}, expected {limits.centre:.6g} "
        f"(limits {limits.lower:.6g} .. {limits.upper:.6g}, from {limits.points} points of {base}'s "
        f"history): {rules}"
    )
