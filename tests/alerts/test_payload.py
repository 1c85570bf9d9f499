from __future__ import annotations

import dataclasses
import json
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.alerts.payload import SCHEMA, SCHEMA_NAME, AlertEvent, alert_schema, payload, readable
from releasekit.spc.model import RULES
from tests.support.alert_events import held_event, null_creep, published_event, row_count_drop


def validator() -> Draft202012Validator:
    schema = alert_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_schema_is_valid_and_shipped_in_the_package() -> None:
    assert (files("releasekit.alerts") / "schemas" / SCHEMA_NAME).is_file()
    assert validator().schema["properties"]["schema"]["const"] == SCHEMA


@pytest.mark.parametrize("event", [held_event(), published_event()])
def test_documents_are_json_and_valid_against_the_schema(event: AlertEvent) -> None:
    document: dict[str, Any] = json.loads(json.dumps(payload(event)))
    validator().validate(document)
    assert document["schema"] == "releasekit.alert/1"
    assert (document["environment"], document["kind"], document["outcome"]) == (
        event.env,
        event.kind,
        event.outcome,
    )


def test_a_held_refresh_says_so_and_lists_each_finding_with_its_numbers_and_meaning() -> None:
    document = payload(held_event())
    headline, published, *lines = document["text"].splitlines()
    assert headline == ":rotating_light: prod (shop): refresh held back: 2 anomalies in 1 model"
    assert published.startswith("Nothing published: release 42 (commit 0123456789ab) was held back")
    assert document["published"].startswith("nothing published")
    assert lines == [
        "• error: orders row_count 1,234, expected 56,789 (limits 55,000 to 58,578, growth): "
        + RULES["beyond_limits"],
        "• warn: orders null_fraction.email 0.051, expected 0.0123 (limits 0 to 0.0311, level): "
        + f"{RULES['beyond_limits']}; {RULES['run_of_eight']}",
    ]


def test_a_published_deploy_warns_and_keeps_the_dirty_mark_of_its_commit() -> None:
    document = payload(published_event())
    headline, published, _ = document["text"].splitlines()
    assert headline == ":warning: prod: deploy published with 1 anomaly in 1 model"
    assert published == "Published with warnings: prod now serves release 43 (commit fedcba987654-dirty)."
    assert document["release"] == 43 and document["project"] == ""


def test_findings_carry_the_observed_value_the_limits_and_each_rule_with_its_meaning() -> None:
    (finding,) = payload(published_event())["findings"]
    assert finding == {
        "model": "orders",
        "unique_id": "model.shop.orders",
        "metric": "null_fraction.email",
        "observed": 0.051,
        "centre": 0.0123,
        "lower": 0.0,
        "upper": 0.0311,
        "baseline": "level",
        "rules": [
            {"rule": "beyond_limits", "means": RULES["beyond_limits"]},
            {"rule": "run_of_eight", "means": RULES["run_of_eight"]},
        ],
        "severity": "warn",
    }


def test_a_long_list_is_cut_in_the_text_but_whole_in_the_findings() -> None:
    event = dataclasses.replace(held_event(), findings=(row_count_drop(),) * 25)
    document = payload(event)
    assert len(document["findings"]) == 25
    assert len(document["text"].splitlines()) == 2 + 20 + 1
    assert document["text"].endswith("… and 5 more findings (all are in the alert's findings)")


def test_slack_markup_in_names_is_escaped() -> None:
    finding = dataclasses.replace(row_count_drop(), model="<!channel> & co")
    text = payload(dataclasses.replace(held_event(), findings=(finding,)))["text"]
    assert "&lt;!channel&gt; &amp; co" in text and "<!channel>" not in text


@pytest.mark.parametrize(
    ("number", "shown"),
    [(1234.0, "1,234"), (-5.0, "-5"), (1234567.8, "1,234,568"), (12.3456, "12.35"), (0.051, "0.051")],
)
def test_numbers_read_easily(number: float, shown: str) -> None:
    assert readable(number) == shown


def test_values_outside_the_documented_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        dataclasses.replace(held_event(), outcome="maybe")
    with pytest.raises(ValueError, match="at least one finding"):
        dataclasses.replace(held_event(), findings=())
    with pytest.raises(ValueError, match="rules"):
        dataclasses.replace(null_creep(), rules=("no_such_rule",))
