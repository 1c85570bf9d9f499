"""The values statistical process control works on: observations of one metric, the
limits learned from them, and the verdict on a new observation.

Plain values, no I/O: `spc.stats` computes them, the engine stores and gates on them,
reporters print and chart them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How the next value of a metric is predicted from its history (spc.stats picks the one
# that explains the history best):
# level: the series holds a level (its median); growth: it grows by a steady amount per
# load (a cumulative row count), so the growth per load is judged; weekly: it repeats a
# weekly pattern, so a point is compared with earlier points of the same weekday.
Baseline = Literal["level", "growth", "weekly"]

# The rules a point can break, with what each means (Shewhart, Western Electric). Nelson's
# trend rule (6 points rising) is left out: on the benchmark it caught no drift the others
# missed, and it fires on smooth normal change (a cumulative mean that rises ever slower).
RULES: dict[str, str] = {
    "beyond_limits": "outside the control limits (one point beyond the limit)",
    "left_zero": "non-zero, where every point of its history was exactly 0",
    "two_of_three": "2 of the last 3 points beyond 2 sigma on the same side (Western Electric 2)",
    "four_of_five": "4 of the last 5 points beyond 1 sigma on the same side (Western Electric 3)",
    "run_of_eight": "8 points in a row on the same side of the centre line (Western Electric 4)",
}


@dataclass(frozen=True)
class Settings:
    """How a metric is judged. `window`: the last N published points the limits are learned
    from; `min_history`: fewer points than this, nothing is judged; `sigma`: the limits'
    half-width in estimated standard deviations (the sensitivity); `tolerance`: the limits
    are never narrower than +/- this share of the centre line, so a series that never
    moved does not turn a tiny wobble into an alarm (a centre of exactly 0 keeps no band:
    a metric that was always 0 becoming non-zero is always flagged)."""

    window: int = 30
    min_history: int = 8
    sigma: float = 3.0
    tolerance: float = 0.02


@dataclass(frozen=True)
class Observation:
    value: float
    at: str  # ISO 8601, UTC: when the measured version was written


@dataclass(frozen=True)
class Limits:
    baseline: Baseline
    centre: float  # the value expected for the point judged
    lower: float
    upper: float
    sigma: float  # the estimated standard deviation the limits are built from
    points: int  # how many points of history they were learned from


@dataclass(frozen=True)
class Verdict:
    """One observation judged against the history before it."""

    value: float
    at: str
    limits: Limits | None  # None: too little history to judge (fewer than min_history)
    rules: tuple[str, ...] = ()  # the keys of RULES the point broke; () when in control

    @property
    def anomalous(self) -> bool:
        return bool(self.rules)
