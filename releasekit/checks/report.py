"""What `releasekit check` found, as plain frozen values.

Findings are data, never exceptions: a lint violation, a failing dbt test, a failing logic
test and a breaking change are `Finding`s. What could not run at all raises a
`releasekit.errors.ReleasekitError` instead. Reporters (terminal, Markdown, JUnit, JSON)
render a `CheckReport`; they never decide anything the report does not already say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

REPORT_VERSION = 1

CheckName = Literal["lint", "build", "logic", "diff"]
CHECK_ORDER: tuple[CheckName, ...] = ("lint", "build", "logic", "diff")
Severity = Literal["error", "warn"]
# passed: nothing at error severity; failed: a finding at error severity; skipped: not run
# (not asked for with --only, nothing to do, or an earlier step made it meaningless).
Status = Literal["passed", "failed", "skipped"]
ChangeClass = Literal["breaking", "non-breaking", "metadata-only"]


@dataclass(frozen=True)
class Finding:
    """One problem a check found."""

    check: CheckName
    code: str  # lint rule (LT01), test name, logic test name, "breaking-change", ...
    message: str
    severity: Severity
    path: str | None = None  # file relative to the repository root
    line: int | None = None
    column: int | None = None
    subject: str | None = None  # the model, test or file the finding is about


@dataclass(frozen=True)
class Case:
    """One thing a check ran (a linted file, a dbt test, a logic test): a JUnit testcase."""

    check: CheckName
    name: str
    passed: bool
    seconds: float = 0.0
    path: str | None = None
    message: str = ""  # why it failed, one line; empty when it passed


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    status: Status
    severity: Severity  # the environment's policy for this check
    summary: str  # one line: "3 files linted, 2 violations", "skipped: nothing changed"
    findings: tuple[Finding, ...] = ()
    cases: tuple[Case, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class ColumnChange:
    column: str
    change: Literal["added", "removed", "retyped"]
    before: str | None = None  # data type in the base, None when added
    after: str | None = None  # data type in the branch, None when removed


@dataclass(frozen=True)
class RowDiff:
    """Rows of a model with a declared unique key, matched on that key."""

    key: tuple[str, ...]
    added: int
    removed: int
    changed: int
    examples: tuple[str, ...] = ()  # a few keys of added, removed or changed rows, rendered


@dataclass(frozen=True)
class ModelImpact:
    """How one changed model differs from the base environment, and what it reaches."""

    model: str  # model name
    unique_id: str
    classification: ChangeClass
    reasons: tuple[str, ...]  # why it changed ("SQL changed", "new model", "removed", ...)
    downstream: tuple[str, ...] = ()  # models that read it, directly or not
    exposures: tuple[str, ...] = ()  # dbt exposures that depend on it
    breaking_because: tuple[str, ...] = ()  # the dependants that make it breaking
    columns: tuple[ColumnChange, ...] = ()
    rows_before: int | None = None  # None: not in the base (new) or not in the branch (removed)
    rows_after: int | None = None
    rows: RowDiff | None = None


@dataclass(frozen=True)
class CheckReport:
    version: int
    env: str  # the branch environment checked
    base: str  # the environment compared against
    git_sha: str
    base_sha: str  # the base environment's deployed commit
    release_id: int | None  # the branch environment's release the checks ran against
    started_at: str  # ISO 8601, UTC
    seconds: float
    checks: tuple[CheckResult, ...]
    impacts: tuple[ModelImpact, ...] = ()
    changed_files: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)  # what a reader should know (truncations, ...)

    @property
    def passed(self) -> bool:
        """True when no check failed at error severity."""
        return not any(check.status == "failed" and check.severity == "error" for check in self.checks)

    @property
    def verdict(self) -> str:
        failed = [c.name for c in self.checks if c.status == "failed" and c.severity == "error"]
        warned = [c.name for c in self.checks if c.status == "failed" and c.severity == "warn"]
        if failed:
            return f"FAILED: {', '.join(failed)}" + (f" (warnings: {', '.join(warned)})" if warned else "")
        return "PASSED" + (f" with warnings: {', '.join(warned)}" if warned else "")

    def check(self, name: CheckName) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)


_KINDS = {"unit_test": "unit test", "test": "data test"}


def node_kind(unique_id: str | None) -> str:
    """What a dbt node is, from its unique id (`model.shop.orders`, `test.shop.not_null_...`):
    model, seed, snapshot, data test or unit test."""
    prefix = (unique_id or "").split(".", 1)[0]
    return _KINDS.get(prefix, prefix or "node")
