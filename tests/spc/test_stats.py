"""SPC judging series of daily loads: the changes it must flag, the normal behaviour it must
leave alone, and properties of the limits."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releasekit.spc.model import RULES, Observation, Settings, Verdict
from releasekit.spc.stats import (
    estimation_factor,
    four_of_five,
    judge,
    judge_rebuild,
    judge_series,
    run_of_eight,
    two_of_three,
)

MONDAY = datetime(2024, 1, 1, 6, tzinfo=UTC)
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def at(day: int) -> str:
    return (MONDAY + timedelta(days=day)).isoformat()


def daily(values: Sequence[float], first_day: int = 0) -> list[Observation]:
    return [Observation(float(v), at(first_day + i)) for i, v in enumerate(values)]


def then(history: Sequence[Observation], value: float) -> Observation:
    """The next daily load after `history`."""
    last = datetime.fromisoformat(history[-1].at)
    return Observation(value, (last + timedelta(days=1)).isoformat())


def wobble(i: int, share: float) -> float:
    """A deterministic wobble of +/- `share`, without any period a rule could mistake for
    a run."""
    return 1 + share * math.sin(i)


def findings(verdicts: Sequence[Verdict]) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.at, v.rules) for v in verdicts if v.anomalous]


def test_a_table_growing_steadily_is_no_finding() -> None:
    rows, counts = 50_000.0, []
    for i in range(60):
        rows += 1000 * wobble(i, 0.05)
        counts.append(round(rows))
    verdicts = judge_series(daily(counts))
    assert findings(verdicts) == []
    assert {v.limits.baseline for v in verdicts if v.limits} == {"growth"}


def test_a_constant_series_and_a_tiny_wobble_is_no_finding() -> None:
    history = daily([1000] * 20)
    assert judge(history, then(history, 1001)).rules == ()
    assert findings(judge_series(daily([1000, 1001] * 20))) == []


def test_a_metric_always_exactly_zero_becoming_non_zero_is_a_finding() -> None:
    history = daily([0] * 20)
    verdict = judge(history, then(history, 0.05))
    assert verdict.rules == ("beyond_limits", "left_zero")
    assert verdict.limits is not None and verdict.limits.lower == verdict.limits.upper == 0


def test_a_null_fraction_spike_from_0_to_5_percent_is_a_finding() -> None:
    verdicts = judge_series(daily([0.0] * 30 + [0.05]))
    assert findings(verdicts) == [(verdicts[-1].at, ("beyond_limits", "left_zero"))]


def steady(loads: int, level: float = 10_000, noise: float = 0.02) -> list[Observation]:
    return daily([level * wobble(i, noise) for i in range(loads)])


def test_a_volume_drop_of_half_or_nine_tenths_is_a_finding() -> None:
    history = steady(30)
    for share in (0.5, 0.9):
        assert "beyond_limits" in judge(history, then(history, 10_000 * (1 - share))).rules


def test_a_growing_table_bringing_half_its_rows_is_a_finding() -> None:
    history = daily([50_000 + 1000 * i + 10 * math.sin(i) for i in range(30)])
    assert judge(history, then(history, history[-1].value + 1000)).rules == ()
    assert "beyond_limits" in judge(history, then(history, history[-1].value + 500)).rules


def test_a_step_of_a_hundred_times_in_a_mean_is_a_finding() -> None:
    history = steady(30, level=42.5)
    assert "beyond_limits" in judge(history, then(history, 4250)).rules


def test_a_slow_drift_of_one_percent_a_load_is_caught_within_ten_loads() -> None:
    rng = random.Random(11)
    values = [1000 * (1 + rng.gauss(0, 0.01)) for _ in range(30)]
    values += [1000 * (1 + 0.01 * step) * (1 + rng.gauss(0, 0.01)) for step in range(1, 21)]
    verdicts = judge_series(daily(values))
    assert findings(verdicts[:30]) == []
    first = next(i for i, v in enumerate(verdicts) if v.anomalous)
    assert first - 29 <= 10


def seasonal(weeks: int) -> list[Observation]:
    """Weekdays at 1000, weekends 40% lower, a wobble of +/- 2%."""
    days = range(7 * weeks)
    return daily([1000 * (0.6 if day % 7 >= 5 else 1.0) * wobble(day, 0.02) for day in days])


def test_a_weekly_series_raises_no_alarm_on_normal_weeks() -> None:
    verdicts = judge_series(seasonal(10))[22:]
    assert findings(verdicts) == []
    assert {v.limits.baseline for v in verdicts if v.limits} == {"weekly"}


def test_a_weekly_series_flags_a_weekday_at_its_weekend_level() -> None:
    history = seasonal(6)  # ends on a Sunday
    assert "beyond_limits" in judge(history, then(history, 600)).rules
    assert judge(history, then(history, 1000)).rules == ()


def test_fewer_points_than_min_history_are_not_judged() -> None:
    history = daily([1000] * 7)
    assert judge(history, then(history, 1)) == Verdict(1, then(history, 1).at, None, ())
    assert [v.limits is None for v in judge_series(daily([5] * 9))] == [True] * 8 + [False]


def test_only_the_window_counts() -> None:
    history = daily([5.0] * 50 + [10.0] * 30)
    verdict = judge(history, then(history, 10), Settings(window=30))
    assert verdict.rules == () and verdict.limits is not None and verdict.limits.points == 30


def test_a_persistent_shift_is_flagged_by_its_eighth_load_by_a_run_rule() -> None:
    values = [100 * wobble(i, 0.02) for i in range(30)] + [104, 103.5, 104.5, 103, 104, 103.5, 104.2, 103.8]
    verdicts = judge_series(daily(values), Settings(tolerance=0))
    shifted = [rule for v in verdicts[30:] for rule in v.rules]
    assert not any(v.anomalous for v in verdicts[:30])
    assert shifted and set(shifted) <= {"four_of_five", "run_of_eight"}  # no point is beyond 3 sigma


def test_the_run_rules_ignore_a_wobble_inside_the_tolerance() -> None:
    # 8 loads 0.5% above a level that never moved: inside 1 sigma of the 2% tolerance floor.
    values = [1000.0] * 30 + [1005.0] * 8
    assert findings(judge_series(daily(values))) == []


def test_the_rules_read_residuals_ending_at_the_point() -> None:
    assert two_of_three([0, 2.5, 0.1, 2.2], 1)
    assert not two_of_three([0, 2.5, 2.2, 0.1], 1)  # the point itself is not beyond
    assert not two_of_three([0, 2.5, -2.2], 1)
    assert four_of_five([1.5, 0.5, 1.2, 1.1, 1.3], 1)
    assert not four_of_five([1.5, 0.5, 1.2, -1.1, 1.3], 1)
    assert run_of_eight([0.1] * 8, 1) and run_of_eight([-0.1] * 8, 1)
    assert not run_of_eight([0.1] * 7 + [0.0], 1) and not run_of_eight([0.1] * 7, 1)


def test_rules_come_in_the_order_of_rules() -> None:
    history = daily([0] * 30)
    rules = judge(history, then(history, 1)).rules
    assert list(rules) == [rule for rule in RULES if rule in rules]


# --- properties ---------------------------------------------------------------------------

series_values = st.lists(st.integers(-(10**6), 10**6), min_size=8, max_size=45)


@PROPERTY
@given(values=series_values, point=st.integers(-(10**6), 10**6))
def test_the_limits_contain_the_centre_and_beyond_limits_means_outside(values: list[int], point: int) -> None:
    history = daily(values)
    verdict = judge(history, then(history, point))
    assert verdict.limits is not None
    assert verdict.limits.lower <= verdict.limits.centre <= verdict.limits.upper
    outside = not verdict.limits.lower <= point <= verdict.limits.upper
    assert ("beyond_limits" in verdict.rules) == outside


@PROPERTY
@given(values=series_values, point=st.integers(-(10**6), 10**6), shift=st.integers(-(10**6), 10**6))
def test_adding_a_constant_shifts_the_limits_by_it(values: list[int], point: int, shift: int) -> None:
    flat = Settings(tolerance=0)  # the tolerance band is a share of the centre: no shift there
    history, moved = daily(values), daily([v + shift for v in values])
    before, after = judge(history, then(history, point), flat), judge(moved, then(moved, point + shift), flat)
    assert before.limits is not None and after.limits is not None
    assert after.limits.baseline == before.limits.baseline
    assert math.isclose(after.limits.centre, before.limits.centre + shift, abs_tol=1e-6)
    assert math.isclose(after.limits.upper - after.limits.lower, before.limits.upper - before.limits.lower)
    assert after.rules == before.rules


@PROPERTY
@given(values=series_values, point=st.integers(-(10**6), 10**6), power=st.integers(-8, 8))
def test_scaling_by_a_power_of_two_scales_the_limits(values: list[int], point: int, power: int) -> None:
    factor = 2.0**power  # exact in binary floating point, so the verdicts must match exactly
    history, scaled = daily(values), daily([v * factor for v in values])
    before, after = judge(history, then(history, point)), judge(scaled, then(scaled, point * factor))
    assert before.limits is not None and after.limits is not None
    expected = (before.limits.lower * factor, before.limits.upper * factor)
    assert (after.limits.lower, after.limits.upper) == expected
    assert after.rules == before.rules


@PROPERTY
@given(values=st.lists(st.floats(-1e9, 1e9), max_size=40), min_history=st.integers(1, 12))
def test_judge_series_judges_each_point_once_enough_came_before(
    values: list[float], min_history: int
) -> None:
    verdicts = judge_series(daily(values), Settings(min_history=min_history))
    assert [v.limits is None for v in verdicts] == [i < min_history for i in range(len(values))]
    assert [v.value for v in verdicts] == values


def test_a_rebuild_of_the_last_load_is_judged_against_that_load_not_the_next() -> None:
    history = daily([1000 + 100 * i + wobble(i, 0.0) + (i % 3) for i in range(20)])
    last = history[-1].value
    same = judge_rebuild(history, then(history, last))
    assert same.limits is not None and same.limits.centre == last and not same.anomalous
    assert judge(history, then(history, last)).anomalous  # as a new load, it brought nothing
    halved = judge_rebuild(history, then(history, last / 2))
    assert halved.rules == ("beyond_limits",)
    assert judge_rebuild(history[:5], then(history, last / 2)).limits is None  # too little history
    zeros = daily([0] * 10)
    assert judge_rebuild(zeros, then(zeros, 0.01)).rules == ("beyond_limits", "left_zero")


def test_short_histories_get_wider_limits_that_narrow_as_they_grow() -> None:
    factors = [estimation_factor(n) for n in (4, 8, 12, 20, 30, 31, 60, 200)]
    assert factors[1] == pytest.approx(2.95) and factors[4] == pytest.approx(1.29)
    assert all(a >= b for a, b in pairwise(factors)) and factors[-1] > 1
    assert estimation_factor(2) == estimation_factor(4)
