from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.checks.codec import (
    SCHEMA_NAME,
    from_dict,
    from_json,
    report_schema,
    to_dict,
    to_json,
)
from releasekit.checks.report import CheckReport
from releasekit.errors import StateError
from tests.support.check_reports import big_report, failed_report, passed_report, reports, warned_report

EXAMPLES = [passed_report(), warned_report(), failed_report()]


def validator() -> Draft202012Validator:
    schema = report_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def described(schema: Any, where: str = "") -> Iterator[str]:
    """Every property of the schema (at any depth) that has no description."""
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            if "description" not in sub:
                yield f"{where}.{name}"
        for key, sub in schema.items():
            yield from described(sub, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from described(sub, f"{where}[{index}]")


def test_the_schema_is_valid_documented_and_shipped_in_the_package() -> None:
    validator()
    assert list(described(report_schema())) == []
    assert report_schema()["properties"]["version"]["const"] == 1
    assert (files("releasekit.checks") / "schemas" / SCHEMA_NAME).is_file()


@pytest.mark.parametrize("report", [*EXAMPLES, big_report(findings=2_000, impacts=200)])
def test_documents_validate_and_read_back_equal(report: CheckReport) -> None:
    document = json.loads(to_json(report))
    validator().validate(document)
    assert from_dict(document) == report
    assert from_json(to_json(report, indent=None)) == report


def test_the_document_names_the_verdict_for_consumers() -> None:
    document = to_dict(failed_report())
    assert document["version"] == 1
    assert (document["passed"], document["verdict"]) == (False, "FAILED: lint, build, diff")
    assert document["checks"][0]["findings"][0] == {
        "check": "lint",
        "code": "LT01",
        "message": "Trailing whitespace.",
        "severity": "error",
        "path": "models/orders.sql",
        "line": 3,
        "column": 5,
        "subject": "models/orders.sql",
    }
    assert document["impacts"][0]["rows"]["key"] == ["order_id"]


def test_derived_fields_are_recomputed_not_read() -> None:
    document = {**to_dict(failed_report()), "passed": True, "verdict": "PASSED"}
    assert from_dict(document).verdict == "FAILED: lint, build, diff"


def test_another_version_is_refused_with_a_hint() -> None:
    with pytest.raises(StateError, match=r"checks/42\.json: check report version 2 is not one") as caught:
        from_dict({**to_dict(passed_report()), "version": 2}, where="checks/42.json")
    assert caught.value.hint is not None and "upgrade releasekit" in caught.value.hint


def test_every_problem_of_a_bad_document_is_named() -> None:
    document = to_dict(failed_report())
    document["checks"][1]["status"] = "exploded"
    document["impacts"][0]["rows"]["added"] = "many"
    document["surprise"] = True
    del document["env"]
    with pytest.raises(StateError) as caught:
        from_dict(document, where="checks/7.json")
    message = str(caught.value)
    assert message.startswith("checks/7.json: not a valid check report:")
    for key in ("checks.1.status", "impacts.0.rows", "surprise", "env"):
        assert key in message, key


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_text_that_is_not_a_report_is_refused(text: str) -> None:
    with pytest.raises(StateError, match=r"checks/1\.json: not"):
        from_json(text, where="checks/1.json")


@settings(max_examples=40, deadline=None)
@given(reports())
def test_any_report_validates_and_round_trips(report: CheckReport) -> None:
    document = json.loads(to_json(report))
    validator().validate(document)
    assert from_dict(document) == report
