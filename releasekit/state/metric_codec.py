"""Metric records (statistical process control) to and from their JSON documents."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from releasekit.state.base import Measurement, MetricRecord
from releasekit.state.codec import _Fields, record_fields

METRIC_FORMAT = "releasekit.metrics/1"
_OUTCOMES = ("published", "held", "checked")


def metric_to_bytes(record: MetricRecord) -> bytes:
    document = {"format": METRIC_FORMAT, **dataclasses.asdict(record)}
    for measurement in document["measurements"]:
        measurement["values"] = {k: _finite(v) for k, v in measurement["values"].items()}
    document["flagged"] = {k: list(v) for k, v in record.flagged.items()}
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


def metric_from_bytes(data: bytes, *, where: str) -> MetricRecord:
    fields = record_fields(
        data, where=where, format_name=METRIC_FORMAT, what="metric record", kind=MetricRecord
    )
    return MetricRecord(
        env=fields.get("env", str),
        kind=fields.get("kind", str),
        outcome=fields.choice("outcome", _OUTCOMES),  # type: ignore[arg-type]
        release_id=fields.optional_integer("release_id"),
        git_sha=fields.get("git_sha", str),
        who=fields.get("who", str),
        at=fields.get("at", str),
        measurements=tuple(
            _measurement(fields, f"measurements[{i}]", value)
            for i, value in enumerate(fields.get("measurements", list))
        ),
        accepted=_strings(fields, "accepted"),
        flagged=_flagged(fields),
        seq=fields.integer("seq"),
    )


def _measurement(fields: _Fields, key: str, value: object) -> Measurement:
    item = fields.nested(key, value)
    item.reject_unknown(frozenset(f.name for f in dataclasses.fields(Measurement)))
    values = item.get("values", dict)
    for name, number in values.items():
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
            raise item.invalid(f"values.{name}", "should be a number or null")
    return Measurement(
        unique_id=item.get("unique_id", str),
        name=item.get("name", str),
        relation=item.get("relation", str),
        written_at=item.get("written_at", str),
        values={name: None if number is None else float(number) for name, number in values.items()},
    )


def _strings(fields: _Fields, key: str) -> dict[str, str]:
    values = fields.get(key, dict)
    if not all(isinstance(v, str) for v in values.values()):
        raise fields.invalid(key, "should map names to strings")
    return dict(values)


def _flagged(fields: _Fields) -> dict[str, tuple[str, ...]]:
    values = fields.get("flagged", dict)
    if not all(isinstance(v, list) and all(isinstance(r, str) for r in v) for v in values.values()):
        raise fields.invalid("flagged", "should map metrics to lists of rule names")
    return {k: tuple(v) for k, v in values.items()}


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
