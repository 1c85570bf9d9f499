"""The alert document releasekit POSTs when statistical process control flags the data of a
refresh, deploy or check: what was found, and whether the data was published anyway.

The document follows `schemas/alert.v1.schema.json` (`"schema": "releasekit.alert/1"`).
Its `text` is a Slack message (mrkdwn): Slack's incoming webhooks read `text` and ignore
the other keys, so one document serves Slack and any other receiver alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, get_args

from releasekit.spc.model import RULES, Baseline

SCHEMA = "releasekit.alert/1"
SCHEMA_NAME = "alert.v1.schema.json"
KINDS = ("refresh", "deploy", "check")
OUTCOMES = ("published", "held")
SEVERITIES = ("warn", "error")
# Slack cuts long messages; the full list is always in `findings`.
_MAX_LINES = 20


@dataclass(frozen=True)
class Finding:
    """One metric of one model that broke at least one control rule."""

    model: str
    unique_id: str
    metric: str  # row_count, null_fraction.<column>, mean.<column>, ...
    value: float
    centre: float
    lower: float
    upper: float
    baseline: str  # level | growth | weekly
    rules: tuple[str, ...]  # keys of releasekit.spc.model.RULES
    severity: str  # warn | error

    def __post_init__(self) -> None:
        unknown = [rule for rule in self.rules if rule not in RULES]
        if not self.rules or unknown:
            raise ValueError(f"finding on {self.unique_id}: rules must be keys of RULES, got {self.rules}")
        _check("baseline", self.baseline, get_args(Baseline))
        _check("severity", self.severity, SEVERITIES)


@dataclass(frozen=True)
class AlertEvent:
    """A refresh, deploy or check of `env` that found anomalies."""

    env: str
    kind: str  # refresh | deploy | check
    outcome: str  # published (warned, published anyway) | held (nothing published)
    release_id: int | None
    git_sha: str
    at: str  # ISO 8601, UTC
    findings: tuple[Finding, ...]
    project: str = ""  # the dbt project's name

    def __post_init__(self) -> None:
        _check("kind", self.kind, KINDS)
        _check("outcome", self.outcome, OUTCOMES)
        if not self.findings:
            raise ValueError(f"an alert on {self.env} needs at least one finding")


def payload(event: AlertEvent) -> dict[str, Any]:
    """The alert document for `event`, JSON-ready and valid against `alert_schema()`."""
    return {
        "schema": SCHEMA,
        "environment": event.env,
        "kind": event.kind,
        "outcome": event.outcome,
        "release": event.release_id,
        "commit": event.git_sha,
        "at": event.at,
        "project": event.project,
        "findings": [_finding(finding) for finding in event.findings],
        "published": _published(event),
        "text": _text(event),
    }


def alert_schema() -> dict[str, Any]:
    """The published JSON Schema of the document (a fresh copy: callers may change it)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def readable(number: float) -> str:
    """A number as a person reads it: 1,234 / 12.35 / 0.051."""
    if not math.isfinite(number):
        return str(number)
    if number == int(number):
        return f"{int(number):,}"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}" if abs(number) >= 1 else f"{number:.3g}"


@cache
def _schema_text() -> str:
    return (files("releasekit.alerts") / "schemas" / SCHEMA_NAME).read_text("utf-8")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "model": finding.model,
        "unique_id": finding.unique_id,
        "metric": finding.metric,
        "observed": finding.value,
        "centre": finding.centre,
        "lower": finding.lower,
        "upper": finding.upper,
        "baseline": finding.baseline,
        "rules": [{"rule": rule, "means": RULES[rule]} for rule in finding.rules],
        "severity": finding.severity,
    }


def _published(event: AlertEvent) -> str:
    release = f"release {event.release_id}" if event.release_id is not None else "the data"
    what = f"{release} (commit {_short(event.git_sha)})"
    if event.outcome == "held":
        return f"nothing published: {what} was held back; {event.env} still serves what it served before"
    return f"published with warnings: {event.env} now serves {what}"


def _text(event: AlertEvent) -> str:
    published = _published(event)
    lines = [_headline(event), _escape(published[:1].upper() + published[1:]) + "."]
    lines += [_line(finding) for finding in event.findings[:_MAX_LINES]]
    hidden = len(event.findings) - _MAX_LINES
    if hidden > 0:
        lines.append(f"… and {_count(hidden, 'more finding')} (all are in the alert's findings)")
    return "\n".join(lines)


def _headline(event: AlertEvent) -> str:
    where = f"{event.env} ({event.project})" if event.project else event.env
    anomalies = _count(len(event.findings), "anomaly", "anomalies")
    models = _count(len({finding.unique_id for finding in event.findings}), "model")
    found = f"{anomalies} in {models}"
    if event.outcome == "held":
        return _escape(f":rotating_light: {where}: {event.kind} held back: {found}")
    return _escape(f":warning: {where}: {event.kind} published with {found}")


def _line(finding: Finding) -> str:
    numbers = (
        f"{readable(finding.value)}, expected {readable(finding.centre)} "
        f"(limits {readable(finding.lower)} to {readable(finding.upper)}, {finding.baseline})"
    )
    meaning = "; ".join(RULES[rule] for rule in finding.rules)
    return _escape(f"• {finding.severity}: {finding.model} {finding.metric} {numbers}: {meaning}")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _short(sha: str) -> str:
    # Enough of the commit to find it; a `-dirty` mark stays visible.
    head, dirty, _ = sha.partition("-dirty")
    return head[:12] + dirty


def _escape(text: str) -> str:
    # The three characters Slack's mrkdwn gives a meaning of their own (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
