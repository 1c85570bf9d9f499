"""Hand-built SPC verdict series for the chart tests: the chart draws values, so the limits
here come from a few lines of arithmetic, not from releasekit's statistics."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime, timedelta

from releasekit.reporting.spc_chart import ChartPoint
from releasekit.spc.model import Limits, Verdict

START = datetime(2025, 3, 1, 6, tzinfo=UTC)
MIN_HISTORY = 8
TOLERANCE = 0.02  # the limits are never narrower than +/- 2% of the centre line


def at(day: int) -> str:
    return (START + timedelta(days=day)).isoformat().replace("+00:00", "Z")


def level_limits(centre: float, half: float, points: int = 10) -> Limits:
    return Limits("level", centre, centre - half, centre + half, half / 3, points)


def plain_series(
    values: list[float], *, judged_from: int = 0, flagged: dict[int, tuple[str, ...]] | None = None
) -> list[ChartPoint]:
    """Daily published points around a level of 100 (limits 90..110) from `judged_from` on;
    `flagged` gives the rules some points broke."""
    rules = flagged or {}
    return [
        ChartPoint(
            Verdict(v, at(i), level_limits(100, 10) if i >= judged_from else None, rules.get(i, ())), True
        )
        for i, v in enumerate(values)
    ]


def row_count_series(days: int = 50, *, drop_on: int = 27, backfill_on: int = 36) -> list[ChartPoint]:
    """A cumulative row count growing ~18k rows a day; on `drop_on` a load lost 90% of the
    rows and was held back; on `backfill_on` a backfill added 400k rows, was flagged, and a
    user accepted it, so the history starts again there."""
    noise = random.Random(7)
    history: list[float] = []
    points: list[ChartPoint] = []
    value = 1_200_000.0
    for day in range(days):
        value += 18_000 + noise.gauss(0, 2_500) + (400_000 if day == backfill_on else 0)
        limits = _growth_limits(history)
        seen = value * 0.1 if day == drop_on else value
        out = limits is not None and not limits.lower <= seen <= limits.upper
        verdict = Verdict(round(seen), at(day), limits, ("beyond_limits",) if out else ())
        published, accepted = day != drop_on, day == backfill_on
        points.append(ChartPoint(verdict, published, accepted))
        if accepted:
            history = []
        if published:
            history.append(verdict.value)
    return points


def _growth_limits(history: list[float]) -> Limits | None:
    if len(history) < MIN_HISTORY:
        return None
    window = history[-30:]
    growths = [b - a for a, b in itertools.pairwise(window)]
    sigma = statistics.stdev(growths)
    centre = window[-1] + statistics.median(growths)
    half = max(3 * sigma, TOLERANCE * centre)
    return Limits("growth", centre, centre - half, centre + half, sigma, len(window))
