"""Synthetic refresh histories for the SPC detection benchmark: daily loads of a metric, of
a few kinds, and the anomalies injected into them.

Every draw comes from the `random.Random` handed in, so one seed gives one data set.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from releasekit.spc.model import Observation

KINDS = ("steady", "growing", "seasonal", "noisy", "constant", "null_fraction")
_START = datetime(2024, 1, 1, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Series:
    kind: str
    points: tuple[Observation, ...]
    growths: tuple[float, ...]  # rows each load brought (growing series), else ()

    def changed(self, position: int, value: float) -> Series:
        points = list(self.points)
        points[position] = Observation(value, points[position].at)
        return Series(self.kind, tuple(points), self.growths)


def make_series(kind: str, loads: int, rng: random.Random) -> Series:
    """`loads` daily points of one kind, starting on a random weekday."""
    start = _START + timedelta(days=rng.randrange(7))
    times = [start + timedelta(days=i) for i in range(loads)]
    values, growths = _VALUES[kind](times, rng)
    ats = [t.isoformat().replace("+00:00", "Z") for t in times]
    return Series(kind, tuple(Observation(v, at) for v, at in zip(values, ats, strict=True)), growths)


Values = tuple[list[float], tuple[float, ...]]


def _noisy_level(noise: float) -> Callable[[list[datetime], random.Random], Values]:
    def values(times: list[datetime], rng: random.Random) -> Values:
        level = rng.uniform(1e3, 1e6)
        return [level * (1 + rng.gauss(0, noise)) for _ in times], ()

    return values


def _seasonal(times: list[datetime], rng: random.Random) -> Values:
    """Weekdays at a level, weekends 40% lower, 3% noise."""
    level = rng.uniform(1e3, 1e6)
    return [level * (0.6 if t.weekday() >= 5 else 1.0) * (1 + rng.gauss(0, 0.03)) for t in times], ()


def _growing(times: list[datetime], rng: random.Random) -> Values:
    """A cumulative row count: about 1000 rows (+/- 5%) more at every load."""
    growths = tuple(float(round(1000 * (1 + rng.gauss(0, 0.05)))) for _ in times)
    total = float(rng.randrange(10_000, 1_000_000))
    values = []
    for rows in growths:
        total += rows
        values.append(total)
    return values, growths


def _constant(times: list[datetime], rng: random.Random) -> Values:
    return [float(rng.randrange(1_000, 1_000_000))] * len(times), ()


def _null_fraction(times: list[datetime], rng: random.Random) -> Values:
    return [0.0] * len(times), ()


_VALUES: dict[str, Callable[[list[datetime], random.Random], Values]] = {
    "steady": _noisy_level(0.02),
    "growing": _growing,
    "seasonal": _seasonal,
    "noisy": _noisy_level(0.10),
    "constant": _constant,
    "null_fraction": _null_fraction,
}


def dropped(series: Series, position: int, share: float) -> float:
    """The value at `position` when the load brings `share` less: less of the level, or
    for a growing series, fewer of the rows it usually brings."""
    value = series.points[position].value
    if series.growths:
        return value - share * series.growths[position]
    return value * (1 - share)


def drifted(series: Series, start: int, per_load: float, loads: int) -> Series:
    """The series with the `loads` points from `start` on drifting by `per_load` a load."""
    for step in range(loads):
        value = series.points[start + step].value * (1 + per_load * (step + 1))
        series = series.changed(start + step, value)
    return series
