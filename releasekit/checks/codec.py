"""A `CheckReport` as a JSON document, and back.

The document follows `schemas/check-report.v1.schema.json`: every field of the report is
written, always, so a consumer never guesses a default; `passed` and `verdict` are added
for consumers such as `jq` and recomputed, not read, on the way back. Reading is strict,
as for the ledger: promotion gates will decide on recorded check outcomes, so a document
that does not match the schema raises `StateError` naming every problem.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.checks.report import (
    REPORT_VERSION,
    Case,
    CheckReport,
    CheckResult,
    ColumnChange,
    Finding,
    ModelImpact,
    RowDiff,
)
from releasekit.config.validation import schema_problems
from releasekit.errors import StateError

SCHEMA_NAME = "check-report.v1.schema.json"
_DERIVED = ("passed", "verdict")
_MAX_PROBLEMS = 10


def to_json(report: CheckReport, *, indent: int | None = 2) -> str:
    """The report as JSON text (UTF-8 as is, keys in field order)."""
    return json.dumps(to_dict(report), indent=indent, ensure_ascii=False)


def to_dict(report: CheckReport) -> dict[str, Any]:
    """A JSON-ready dict: lists for tuples, nested dicts for nested values."""
    document: dict[str, Any] = _plain(report)
    # The verdict next to the version, where a reader of the file looks first.
    return {
        "version": document.pop("version"),
        "passed": report.passed,
        "verdict": report.verdict,
        **document,
    }


def from_dict(document: Mapping[str, Any], *, where: str = "check report") -> CheckReport:
    """Read a document `to_dict` wrote; `where` (a file path, an object key) names it in errors."""
    _validate(document, where)
    checks = tuple(_check(raw) for raw in document["checks"])
    impacts = tuple(_impact(raw) for raw in document["impacts"])
    scalars = {k: v for k, v in document.items() if k not in {"checks", "impacts", *_DERIVED}}
    scalars.update(changed_files=tuple(scalars["changed_files"]), notes=tuple(scalars["notes"]))
    return CheckReport(**scalars, checks=checks, impacts=impacts)


def from_json(text: str, *, where: str = "check report") -> CheckReport:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a releasekit check report (a JSON object)")
    return from_dict(document, where=where)


def report_schema() -> dict[str, Any]:
    """The published JSON Schema of the document (a fresh copy: callers may change it)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@cache
def _schema_text() -> str:
    return (files("releasekit.checks") / "schemas" / SCHEMA_NAME).read_text("utf-8")


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(report_schema())


def _plain(value: Any) -> Any:
    """Frozen dataclasses to dicts and tuples to lists, all the way down."""
    if dataclasses.is_dataclass(value):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _validate(document: Mapping[str, Any], where: str) -> None:
    version = document.get("version")
    if version != REPORT_VERSION:
        raise StateError(
            f"{where}: check report version {version!r} is not one this releasekit reads ({REPORT_VERSION})",
            hint="a newer releasekit may have written it: upgrade releasekit",
        )
    problems = schema_problems(document, _validator(), where)
    if problems:
        lines = [f"  {problem.render()}" for problem in problems[:_MAX_PROBLEMS]]
        more = len(problems) - _MAX_PROBLEMS
        lines += [f"  … and {more} more"] if more > 0 else []
        raise StateError(f"{where}: not a valid check report:\n" + "\n".join(lines))


# The schema has checked every key and type, so the readers below only rebuild values.


def _check(raw: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        name=raw["name"],
        status=raw["status"],
        severity=raw["severity"],
        summary=raw["summary"],
        findings=tuple(Finding(**f) for f in raw["findings"]),
        cases=tuple(Case(**c) for c in raw["cases"]),
        seconds=raw["seconds"],
    )


def _impact(raw: Mapping[str, Any]) -> ModelImpact:
    rows = raw["rows"]
    return ModelImpact(
        model=raw["model"],
        unique_id=raw["unique_id"],
        classification=raw["classification"],
        reasons=tuple(raw["reasons"]),
        downstream=tuple(raw["downstream"]),
        exposures=tuple(raw["exposures"]),
        breaking_because=tuple(raw["breaking_because"]),
        columns=tuple(ColumnChange(**c) for c in raw["columns"]),
        rows_before=raw["rows_before"],
        rows_after=raw["rows_after"],
        rows=None if rows is None else _row_diff(rows),
    )


def _row_diff(raw: Mapping[str, Any]) -> RowDiff:
    return RowDiff(
        key=tuple(raw["key"]),
        added=raw["added"],
        removed=raw["removed"],
        changed=raw["changed"],
        examples=tuple(raw["examples"]),
    )
