"""How the next value of a metric is predicted from its history, and how far off such a
prediction usually is: the three baselines `spc.stats` chooses from (see its docstring).

Each fit carries the prediction for the point judged, the robust standard deviation of
its residuals, and the residuals of the history points themselves (older first), which
the run rules read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import fmean, median

from releasekit.spc.model import Baseline, Observation

# The MAD of a normal distribution is 0.6745 sigma (1 / the normal's 3rd quartile).
MAD_TO_SIGMA = 1.4826
# The mean absolute deviation of a normal distribution is 0.7979 sigma (sqrt(2 / pi)).
MEAN_ABS_TO_SIGMA = 1.2533
# A more complex baseline must cut the simpler one's error below this share to be chosen:
# differences of a steady noisy series spread sqrt(2) (1.41) times as much as the series,
# so a chance win of the growth baseline on such a series does not get that far.
SIMPLER_UNLESS = 0.7
# Three of each weekday before the weekly baseline is trusted.
WEEKLY_SPAN = timedelta(weeks=3)


@dataclass(frozen=True)
class Fit:
    baseline: Baseline
    centre: float  # the value predicted for the point judged
    scale: float  # what the tolerance is a share of: the centre, or the growth per load
    sigma: float  # robust estimate of the residuals' standard deviation
    residuals: tuple[float, ...]  # of the history points, older first


def fit(window: Sequence[Observation], point: Observation) -> Fit:
    """The baseline that explains `window` best: the simplest one, unless another one's mean
    absolute residual is below SIMPLER_UNLESS of it.

    The choice compares mean absolute residuals (the forecaster's MAE) over the latest
    points every candidate has a residual for, not the robust sigma: a robust scale
    ignores a minority of points by design, and a level fitted to a weekly series misses
    only its weekends, 2 points in 7."""
    found = candidates(window, point)
    common = min(len(f.residuals) for f in found)
    chosen, *others = found
    for other in others:
        if _error(other, common) < SIMPLER_UNLESS * _error(chosen, common):
            chosen = other
    return chosen


def _error(candidate: Fit, last: int) -> float:
    residuals = candidate.residuals[-last:] if last else ()
    return fmean(abs(r) for r in residuals) if residuals else 0.0


def candidates(window: Sequence[Observation], point: Observation) -> list[Fit]:
    """The baselines `window` allows, simplest first."""
    found = [level(window)]
    if len(window) >= 3:
        found.append(growth(window))
    weekly_fit = weekly(window, point)
    if weekly_fit is not None:
        found.append(weekly_fit)
    return found


_LAG = 2  # the newest points the level's centre leaves out (tests/benchmarks/test_spc_detection.py)


def level(window: Sequence[Observation]) -> Fit:
    """The median of the window but its last 2 points (of at least half of it), so that a
    shift or drift under way does not drag the centre along before a run rule sees it."""
    values = [o.value for o in window]
    centre = median(values[: max(len(values) - _LAG, (len(values) + 1) // 2)])
    residuals = tuple(v - centre for v in values)
    return Fit("level", centre, centre, robust_sigma(residuals), residuals)


def growth(window: Sequence[Observation]) -> Fit:
    values = [o.value for o in window]
    steps = [after - before for before, after in pairwise(values)]
    step = median(steps)
    residuals = tuple(d - step for d in steps)
    return Fit("growth", values[-1] + step, step, robust_sigma(residuals), residuals)


def weekly(window: Sequence[Observation], point: Observation) -> Fit | None:
    """None when the window spans under WEEKLY_SPAN or holds no earlier point of the
    point's weekday."""
    times = [moment(o.at) for o in window]
    if max(times) - min(times) < WEEKLY_SPAN:
        return None
    days = [t.weekday() for t in times]
    weekday = moment(point.at).weekday()
    same_day = [o.value for o, day in zip(window, days, strict=True) if day == weekday]
    if not same_day:
        return None
    residuals = tuple(_weekly_residuals([o.value for o in window], days))
    centre = median(same_day)
    return Fit("weekly", centre, centre, robust_sigma(residuals), residuals)


def _weekly_residuals(values: list[float], days: list[int]) -> list[float]:
    """Each value less the median of the earlier values of its weekday, for the values
    that have one."""
    residuals = []
    for i, value in enumerate(values):
        earlier = [values[j] for j in range(i) if days[j] == days[i]]
        if earlier:
            residuals.append(value - median(earlier))
    return residuals


def robust_sigma(residuals: Sequence[float]) -> float:
    """1.4826 x the median absolute residual; when over half of them are exactly 0, 1.2533 x
    the mean absolute residual; 0 when all are 0.

    Residuals are prediction errors, so their deviation is taken from 0, not from their own
    median: for the level and growth baselines that median is 0 by construction; for the
    weekly one a bias widens the estimate, as it should."""
    deviations = [abs(r) for r in residuals]
    if not deviations or max(deviations) == 0:
        return 0.0
    mad = median(deviations)
    if mad > 0:
        return MAD_TO_SIGMA * mad
    return MEAN_ABS_TO_SIGMA * fmean(deviations)


def moment(at: str) -> datetime:
    """An ISO 8601 time in UTC (a time without a zone is taken as UTC)."""
    parsed = datetime.fromisoformat(at)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
