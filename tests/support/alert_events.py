"""Alert events as refreshes and deploys report them: held back, and published with a warning."""

from __future__ import annotations

from releasekit.alerts.payload import AlertEvent, Finding


def row_count_drop(severity: str = "error") -> Finding:
    return Finding(
        model="orders",
        unique_id="model.shop.orders",
        metric="row_count",
        value=1234.0,
        centre=56789.0,
        lower=55000.0,
        upper=58578.0,
        baseline="growth",
        rules=("beyond_limits",),
        severity=severity,
    )


def null_creep() -> Finding:
    return Finding(
        model="orders",
        unique_id="model.shop.orders",
        metric="null_fraction.email",
        value=0.051,
        centre=0.0123,
        lower=0.0,
        upper=0.0311,
        baseline="level",
        rules=("beyond_limits", "run_of_eight"),
        severity="warn",
    )


def held_event() -> AlertEvent:
    return AlertEvent(
        env="prod",
        kind="refresh",
        outcome="held",
        release_id=42,
        git_sha="0123456789abcdef0123456789abcdef01234567",
        at="2025-03-04T05:06:07Z",
        findings=(row_count_drop(), null_creep()),
        project="shop",
    )


def published_event() -> AlertEvent:
    return AlertEvent(
        env="prod",
        kind="deploy",
        outcome="published",
        release_id=43,
        git_sha="fedcba9876543210fedcba9876543210fedcba98-dirty",
        at="2025-03-05T05:06:07Z",
        findings=(null_creep(),),
    )
