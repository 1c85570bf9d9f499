"""Hand-built `CheckReport`s for the reporter tests: reporters are pure renderers of values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hypothesis import strategies as st

from releasekit.checks.report import (
    CHECK_ORDER,
    REPORT_VERSION,
    Case,
    CheckName,
    CheckReport,
    CheckResult,
    ColumnChange,
    Finding,
    ModelImpact,
    RowDiff,
    Severity,
)

HOSTILE = "a | b <script>alert(1)</script> *x* `y` [z](http://e) ~~s~~ &amp; \\| #1\nsecond line"


def make_report(
    checks: Sequence[CheckResult] = (),
    *,
    impacts: Sequence[ModelImpact] = (),
    notes: Sequence[str] = (),
    changed_files: Sequence[str] = (),
    env: str = "feature/orders-v2",
) -> CheckReport:
    """A report holding `checks`; checks not given are present as skipped."""
    given = {check.name: check for check in checks}
    return CheckReport(
        version=REPORT_VERSION,
        env=env,
        base="prod",
        git_sha="0123456789abcdef0123456789abcdef01234567",
        base_sha="fedcba9876543210fedcba9876543210fedcba98",
        release_id=7,
        started_at="2025-05-01T10:00:00Z",
        seconds=41.25,
        checks=tuple(given.get(name) or skipped(name) for name in CHECK_ORDER),
        impacts=tuple(impacts),
        changed_files=tuple(changed_files),
        notes=tuple(notes),
    )


def skipped(name: CheckName) -> CheckResult:
    return CheckResult(name, "skipped", "error", "skipped: nothing changed")


def passed(name: CheckName, cases: Sequence[Case] = ()) -> CheckResult:
    return CheckResult(
        name, "passed", "error", f"{len(cases)} ran, all passed", cases=tuple(cases), seconds=1.5
    )


def lint_finding(
    path: str = "models/orders.sql", line: int = 3, message: str = "Trailing whitespace."
) -> Finding:
    return Finding("lint", "LT01", message, "error", path=path, line=line, column=5, subject=path)


def lint_check(findings: Sequence[Finding], severity: Severity = "error") -> CheckResult:
    paths = sorted({f.path or "" for f in findings})
    cases = tuple(Case("lint", p, passed=False, seconds=0.25, path=p, message="violations") for p in paths)
    summary = f"{len(paths)} files linted, {len(findings)} violations"
    return CheckResult("lint", "failed", severity, summary, tuple(findings), cases, 2.0)


def failed_report() -> CheckReport:
    """Every kind of finding: lint, a failed dbt test, a warn logic test, a breaking change."""
    lint = lint_check([lint_finding(), lint_finding(line=9), lint_finding("models/customers.sql")])
    test = Finding(
        "build",
        "not_null_orders_id",
        "Got 3 results, configured to fail if != 0",
        "error",
        subject="test.shop.not_null_orders_id.5c1f0e",
    )
    model = Finding(
        "build", "margins", "Runtime Error: division by zero", "error", subject="model.shop.margins"
    )
    build = CheckResult(
        "build",
        "failed",
        "error",
        "4 models built, 6 tests, 1 failed",
        (test, model),
        (
            Case("build", "not_null_orders_id", passed=False, seconds=0.5, message="Got 3 results"),
            Case("build", "unique_orders_id", passed=True, seconds=0.75),
        ),
        3.0,
    )
    logic = CheckResult(
        "logic",
        "passed",
        "error",
        "2 logic tests, 1 warning",
        (Finding("logic", "revenue_is_positive", "2 days with negative revenue", "warn", subject="revenue"),),
        (
            Case("logic", "revenue_is_positive", passed=False, seconds=0.1, message="2 days"),
            Case("logic", "orders_match_payments", passed=True, seconds=0.2),
        ),
        0.3,
    )
    breaking = Finding(
        "diff", "breaking-change", "column status removed, read by revenue", "error", subject="orders"
    )
    diff = CheckResult("diff", "failed", "error", "2 changed models, 1 breaking", (breaking,), (), 5.0)
    return make_report(
        [lint, build, logic, diff],
        impacts=IMPACTS,
        notes=("logic tests ran against a sample",),
        changed_files=("models/orders.sql", "models/customers.sql"),
    )


IMPACTS = (
    ModelImpact(
        "orders",
        "model.shop.orders",
        "breaking",
        ("SQL changed",),
        downstream=("revenue", "customers"),
        exposures=("weekly_dashboard",),
        breaking_because=("revenue",),
        columns=(
            ColumnChange("status", "removed", before="text"),
            ColumnChange("total", "retyped", "int", "numeric"),
        ),
        rows_before=1000,
        rows_after=990,
        rows=RowDiff(("order_id",), added=0, removed=10, changed=25, examples=("order_id=17", "order_id=18")),
    ),
    ModelImpact(
        "customers", "model.shop.customers", "non-breaking", ("SQL changed",), rows_before=50, rows_after=52
    ),
    ModelImpact("new_model", "model.shop.new_model", "non-breaking", ("new model",), rows_after=5),
)


def passed_report() -> CheckReport:
    return make_report(
        [passed(name, [Case(name, f"{name}_case", passed=True, seconds=0.5)]) for name in CHECK_ORDER]
    )


def warned_report() -> CheckReport:
    """Lint failed, but the environment only warns on lint: the report passes."""
    return make_report([lint_check([lint_finding()], severity="warn"), passed("build")])


def big_report(findings: int = 20_000, impacts: int = 2_000) -> CheckReport:
    lint = lint_check(
        [lint_finding(f"models/m{i % 500}.sql", i, f"Line too long ({i}).") for i in range(findings)]
    )
    many = tuple(
        replace(
            IMPACTS[0],
            model=f"model_{i}",
            unique_id=f"model.shop.model_{i}",
            breaking_because=(f"child_{i}",),
        )
        for i in range(impacts)
    )
    files = tuple(f"models/m{i}.sql" for i in range(500))
    return make_report(
        [lint], impacts=many, changed_files=files, notes=tuple(f"note {i}" for i in range(300))
    )


# Any text, including control characters, markup and HTML: the reporters must survive it.
texts = st.text(max_size=40)
findings = st.builds(
    Finding,
    check=st.sampled_from(CHECK_ORDER),
    code=texts,
    message=texts,
    severity=st.sampled_from(("error", "warn")),
    path=st.none() | texts,
    line=st.none() | st.integers(1, 10_000),
    column=st.none() | st.integers(1, 500),
    subject=st.none() | texts,
)
cases = st.builds(
    Case,
    check=st.sampled_from(CHECK_ORDER),
    name=texts,
    passed=st.booleans(),
    seconds=st.floats(0, 1e4),
    path=st.none() | texts,
    message=texts,
)


@st.composite
def reports(draw: st.DrawFn) -> CheckReport:
    checks = [
        CheckResult(
            name,
            draw(st.sampled_from(("passed", "failed", "skipped"))),
            draw(st.sampled_from(("error", "warn"))),
            draw(texts),
            tuple(replace(f, check=name) for f in draw(st.lists(findings, max_size=4))),
            tuple(replace(c, check=name) for c in draw(st.lists(cases, max_size=4))),
            draw(st.floats(0, 1e4)),
        )
        for name in CHECK_ORDER
    ]
    impact = ModelImpact(
        draw(texts), draw(texts), "breaking", (draw(texts),), breaking_because=(draw(texts),)
    )
    return make_report(checks, impacts=[impact], notes=[draw(texts)], env=draw(texts))
