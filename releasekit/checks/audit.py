"""The logic tests as a refresh's audit: run against the relations a refresh wrote, before
any consumer view reads them (engine.refresh calls it between write and publish)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from releasekit.checks import logic
from releasekit.engine.deploy import Failure
from releasekit.engine.refresh import Audit
from releasekit.warehouse.base import Warehouse


def logic_audit(project_dir: Path, schema: str) -> Audit:
    """An audit running the project's logic tests (read now: a malformed one stops the
    refresh before anything is written). A test of severity `error` that finds rows or
    cannot run holds the data back; one of severity `warn` never does."""
    tests = logic.discover(project_dir)

    def audit(warehouse: Warehouse, relations: Mapping[str, tuple[str, str]]) -> Sequence[Failure]:
        outcomes = logic.run(tests, warehouse, schema, list(relations), relations=relations)
        return [_failure(o) for o in outcomes if not o.passed and o.test.severity == "error"]

    return audit


def _failure(outcome: logic.LogicOutcome) -> Failure:
    test = outcome.test
    if outcome.error is not None:
        return Failure(f"logic:{test.name}", "logic test", "error", outcome.error)
    example = f"; e.g. {outcome.examples[0]}" if outcome.examples else ""
    return Failure(
        f"logic:{test.name}", "logic test", "fail", f"{outcome.violations} row(s) break it{example}"
    )
