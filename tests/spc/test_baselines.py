"""The baselines SPC predicts a metric's next value with, and the robust sigma of each."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from releasekit.spc.baselines import MAD_TO_SIGMA, MEAN_ABS_TO_SIGMA, candidates, fit, moment, robust_sigma
from releasekit.spc.model import Observation

MONDAY = datetime(2024, 1, 1, 6, tzinfo=UTC)


def daily(values: list[float]) -> list[Observation]:
    return [Observation(v, (MONDAY + timedelta(days=i)).isoformat()) for i, v in enumerate(values)]


def test_robust_sigma_is_the_scaled_median_absolute_residual() -> None:
    assert robust_sigma([-2.0, -1.0, 0.0, 1.0, 2.0]) == pytest.approx(MAD_TO_SIGMA * 1.0)


def test_robust_sigma_falls_back_on_the_mean_absolute_residual_when_most_are_zero() -> None:
    assert robust_sigma([0.0] * 9 + [10.0]) == pytest.approx(MEAN_ABS_TO_SIGMA * 1.0)


def test_robust_sigma_of_residuals_all_zero_is_zero() -> None:
    assert robust_sigma([0.0] * 5) == 0.0 and robust_sigma([]) == 0.0


def test_robust_sigma_ignores_a_few_outliers() -> None:
    assert robust_sigma([-1.0, 1.0] * 10 + [1e6, -1e6]) == pytest.approx(MAD_TO_SIGMA)


def test_a_steady_noisy_series_stays_on_level() -> None:
    window = daily([100 + 10 * math.sin(i * 2.1) for i in range(30)])
    assert fit(window, Observation(100, (MONDAY + timedelta(days=30)).isoformat())).baseline == "level"


def test_growth_predicts_the_last_value_plus_the_median_growth() -> None:
    window = daily([10.0, 20.0, 31.0, 40.0, 50.0, 61.0, 70.0, 80.0])
    chosen = fit(window, Observation(0, (MONDAY + timedelta(days=8)).isoformat()))
    assert (chosen.baseline, chosen.centre, chosen.scale) == ("growth", 90.0, 10.0)


def test_weekly_needs_three_weeks_of_history() -> None:
    values = [60.0 if i % 7 >= 5 else 100.0 for i in range(22)]
    point = Observation(0, (MONDAY + timedelta(days=22)).isoformat())
    assert [c.baseline for c in candidates(daily(values[:21]), point)] == ["level", "growth"]
    assert [c.baseline for c in candidates(daily(values), point)] == ["level", "growth", "weekly"]


def test_weekly_predicts_the_median_of_the_same_weekday() -> None:
    values = [60.0 + i if i % 7 >= 5 else 100.0 for i in range(28)]
    saturday = Observation(0, (MONDAY + timedelta(days=33)).isoformat())
    chosen = fit(daily(values), saturday)
    assert (chosen.baseline, chosen.centre) == ("weekly", 75.5)  # Saturdays 65, 72, 79, 86


def test_a_weekly_series_goes_weekly_even_where_the_mad_of_level_would_not_tell() -> None:
    rng = random.Random(4)
    values = [1000 * (0.6 if i % 7 >= 5 else 1) * (1 + rng.gauss(0, 0.03)) for i in range(30)]
    point = Observation(0, (MONDAY + timedelta(days=30)).isoformat())
    level, _, weekly = candidates(daily(values), point)
    assert weekly.sigma > level.sigma  # the MAD of level ignores the weekends, 2 points in 7
    assert fit(daily(values), point).baseline == "weekly"


def test_times_are_read_in_utc() -> None:
    assert moment("2024-01-01T23:30:00-02:00").weekday() == 1  # already Tuesday in UTC
    assert moment("2024-01-01T06:00:00Z") == moment("2024-01-01T06:00:00") == MONDAY
