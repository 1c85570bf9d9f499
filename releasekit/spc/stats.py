"""Statistical process control of one metric: control limits learned from the points
before a new one, and the rules that judge it.

The history is the metric's published points, older first; only the last
`Settings.window` count, and with fewer than `Settings.min_history` nothing is judged.

Baselines (`spc.baselines`): three predictions of the next point, each with its residuals
r on the window:
- level: the median of the window but its newest 2 points (so that a drift under way does
  not drag the centre along); r = x - that median. A Shewhart individuals chart with a
  robust centre line.
- growth: the last value plus the median growth per load; r = d - median(d), d the
  differences between consecutive points. The individuals chart of the first
  differences, the textbook treatment of a trending process (a row count that rises at
  every load is judged on how much it grew).
- weekly (only when the window spans 3 weeks or more): the median of the earlier
  points of the same weekday (UTC); r = each point less that median, for the points that
  have one. The seasonal-naive forecast, with a median to resist a single odd week.
Sigma is estimated robustly, so that past anomalies do not widen the limits: 1.4826 x
the median absolute residual (the MAD, consistent for the normal's standard
deviation); when over half the residuals are exactly 0, 1.2533 x the mean absolute
residual; 0 when all are 0. The simplest baseline (level, growth, weekly) is kept unless
another one's error is below 0.7 of it: a steady noisy series stays on level, since its
differences spread sqrt(2) times as much. The error compared is the mean absolute
residual over the latest points every candidate has a residual for (the forecaster's
MAE), not the robust sigma: a robust scale ignores a minority of points by design, and
a level fitted to a weekly series misses only its weekends, 2 days in 7, so the MAD
would often keep a weekly series on level.

Limits: centre = the prediction, half-width = max(sigma x `Settings.sigma` x
estimation_factor(n), `Settings.tolerance` x |scale|), scale the centre (level, weekly) or
the median growth. estimation_factor widens the limits for the uncertainty of a sigma
estimated from n residuals (x2.95 at 8, x1.29 at 30, towards 1 as n grows): without it a
point of normal noise falls beyond 3 estimated sigmas 6.9% of the time with 8 points and
1.3% with 30 (0.27% with the true sigma), since the MAD is 37% efficient. These are
prediction limits for the next point, not Phase I limits of the history. A series that
never moved gets a band of +/- tolerance, and a centre of exactly 0 with sigma 0 keeps none.

Rules (the keys of `model.RULES`, reported in that order, every one broken):
- beyond_limits (Shewhart): the point outside [lower, upper].
- left_zero: every point of the window was exactly 0 and the point is not. It comes in
  addition to beyond_limits (which such a point always breaks, the band being empty), so
  that beyond_limits keeps one meaning and the report says why.
- two_of_three, four_of_five, run_of_eight (Western Electric rules 2, 3, 4), on the
  residuals of the last 7 history points plus the point's own (value - centre). The
  zones are the usual thirds of the control band: one sigma there is half-width /
  `Settings.sigma`. Residuals inside the tolerance floor / `Settings.sigma` count as on
  the centre line, so a series that never moved does not alarm on a tiny persistent
  wobble. A rule is broken only when the point judged is one of the points that break it
  (a run ends at it): an old run is not reported again on the next point unless that
  point extends it.
Nelson's trend rule (6 points rising) is not used: on the benchmark it caught no drift
the others missed, and it fires on smooth normal change.

tests/benchmarks/test_spc_detection.py measures what this catches and what it costs in
false alarms on normal noise (0.9% of normal loads over six kinds of series).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from releasekit.spc.baselines import Fit, fit
from releasekit.spc.model import RULES, Limits, Observation, Settings, Verdict

DEFAULTS = Settings()
# The longest run rule looks at 8 points: the point judged and 7 before it.
_RUN_SPAN = 8


def judge(history: Sequence[Observation], point: Observation, settings: Settings = DEFAULTS) -> Verdict:
    """`point` judged against `history` (older first, only the points that count)."""
    window = list(history)[-settings.window :] if settings.window > 0 else []
    if not window or len(window) < settings.min_history:
        return Verdict(point.value, point.at, None)
    chosen = fit(window, point)
    limits = limits_of(chosen, settings, len(window))
    return Verdict(point.value, point.at, limits, broken(window, point, chosen, limits, settings))


def judge_rebuild(
    history: Sequence[Observation], point: Observation, settings: Settings = DEFAULTS
) -> Verdict:
    """`point` measured on a rebuild of the data the last point of `history` was measured
    on, by changed code (a branch's check): no load came in between, so the centre is that
    last point, and the limits are as wide as one load normally moves the metric. Only
    beyond_limits and left_zero apply: one rebuild makes no run."""
    window = list(history)[-settings.window :] if settings.window > 0 else []
    if not window or len(window) < settings.min_history:
        return Verdict(point.value, point.at, None)
    chosen = fit(window, point)
    moved = limits_of(chosen, settings, len(window))
    half = max(moved.upper - moved.centre, settings.tolerance * abs(window[-1].value))
    last = window[-1].value
    limits = Limits(chosen.baseline, last, last - half, last + half, chosen.sigma, len(window))
    found = {"beyond_limits"} if not limits.lower <= point.value <= limits.upper else set()
    if point.value != 0 and all(o.value == 0 for o in window):
        found.add("left_zero")
    return Verdict(point.value, point.at, limits, tuple(rule for rule in RULES if rule in found))


def judge_series(points: Sequence[Observation], settings: Settings = DEFAULTS) -> list[Verdict]:
    """Each point judged against the points before it."""
    return [judge(points[max(0, i - settings.window) : i], point, settings) for i, point in enumerate(points)]


# How much wider than `sigma` estimated sigmas the limits must be for a point of an
# in-control series to fall outside them as rarely as beyond 3 true sigmas (0.27%), when
# sigma is the MAD estimate from n residuals: the 99.73% quantile of |new - median| / MAD
# sigma over 400,000 simulated normal samples per n, divided by 3. Odd and even n differ
# (an even median averages two points). Beyond 30: 1 + 8.5 / n fits the simulation
# (1.22 at 40, 1.17 at 50, 1.08 at 100).
_ESTIMATION: dict[int, float] = {
    4: 10.45, 5: 9.56, 6: 4.34, 7: 4.2, 8: 2.95, 9: 2.85, 10: 2.34, 11: 2.32, 12: 2.0, 13: 1.96,
    14: 1.81, 15: 1.79, 16: 1.67, 17: 1.64, 18: 1.57, 19: 1.54, 20: 1.49, 21: 1.47, 22: 1.43,
    23: 1.43, 24: 1.4, 25: 1.39, 26: 1.35, 27: 1.35, 28: 1.33, 29: 1.33, 30: 1.29,
}  # fmt: skip


def estimation_factor(residuals: int) -> float:
    """The limits' widening for a sigma estimated from `residuals` points (see _ESTIMATION):
    short histories are uncertain, and limits that ignore it alarm on in-control points."""
    if residuals > 30:
        return 1 + 8.5 / residuals
    return _ESTIMATION[max(residuals, 4)]


def limits_of(chosen: Fit, settings: Settings, points: int) -> Limits:
    spread = settings.sigma * chosen.sigma * estimation_factor(len(chosen.residuals))
    half = max(spread, settings.tolerance * abs(chosen.scale))
    centre = chosen.centre
    return Limits(chosen.baseline, centre, centre - half, centre + half, chosen.sigma, points)


def broken(
    window: Sequence[Observation], point: Observation, chosen: Fit, limits: Limits, settings: Settings
) -> tuple[str, ...]:
    """The keys of RULES the point breaks, in RULES order."""
    found = set(_run_rules_broken(point, chosen, limits, settings))
    if not limits.lower <= point.value <= limits.upper:
        found.add("beyond_limits")
    if point.value != 0 and all(o.value == 0 for o in window):
        found.add("left_zero")
    return tuple(rule for rule in RULES if rule in found)


def _run_rules_broken(point: Observation, chosen: Fit, limits: Limits, settings: Settings) -> list[str]:
    one_sigma = (limits.upper - limits.centre) / settings.sigma if settings.sigma > 0 else chosen.sigma
    floor = settings.tolerance * abs(chosen.scale) / settings.sigma if settings.sigma > 0 else 0.0
    recent = [*chosen.residuals[-(_RUN_SPAN - 1) :], point.value - chosen.centre]
    on_line = [0.0 if abs(r) < floor else r for r in recent]
    return [name for name, rule in _RUN_RULES.items() if rule(on_line, one_sigma)]


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def _beyond_on_one_side(residuals: Sequence[float], zone: float, needed: int, of: int) -> bool:
    """`needed` of the last `of` residuals beyond `zone` on the side of the last one, the
    last one among them."""
    last = residuals[-of:]
    side = _sign(last[-1])
    if len(last) < of or side == 0 or last[-1] * side <= zone:
        return False
    return sum(1 for r in last if r * side > zone) >= needed


def two_of_three(residuals: Sequence[float], one_sigma: float) -> bool:
    return _beyond_on_one_side(residuals, 2 * one_sigma, needed=2, of=3)


def four_of_five(residuals: Sequence[float], one_sigma: float) -> bool:
    return _beyond_on_one_side(residuals, one_sigma, needed=4, of=5)


def run_of_eight(residuals: Sequence[float], one_sigma: float) -> bool:
    last = residuals[-8:]
    return len(last) == 8 and abs(sum(_sign(r) for r in last)) == 8


_RUN_RULES: dict[str, Callable[[Sequence[float], float], bool]] = {
    "two_of_three": two_of_three,
    "four_of_five": four_of_five,
    "run_of_eight": run_of_eight,
}
