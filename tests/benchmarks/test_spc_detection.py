"""Benchmark: how well releasekit's SPC catches anomalies in refresh histories, and how
often it cries wolf, side by side with a plain z-score.

Run: .venv/bin/pytest -m benchmark -s -p no:xdist tests/benchmarks/test_spc_detection.py

Synthetic daily loads (`spc_histories`, one fixed seed) of six kinds: steady (a level,
2% noise), growing (a cumulative row count, ~1000 +/- 5% rows a load), seasonal (weekdays
at a level, weekends 40% lower, 3% noise), noisy (10% noise), constant, and a null
fraction that is always 0. Every load from the 9th on is judged against the loads before
it (Settings(min_history=8, window=30)): those are the normal loads, for the false-alarm
rate. Anomalies are injected at random positions of every series of the kinds they fit,
each judged against the clean history before it:
- a volume drop of 50% and of 90% (a growing series: the load brings that many fewer rows),
- a x100 unit error in a mean (the level kinds),
- a null spike from 0 to 5-30% (the null fraction),
- a slow drift of +1% a load over 20 loads (the level kinds): the drifting loads join the
  history until one is caught; the figure is how many loads that took.
The z-score baseline flags |x - mean| > 3 stdev over the previous 14 values (any change
of a series whose 14 values are all equal).

Targets: >= 95% of the sudden anomalies caught on the load where they arrive, drift
caught within 10 loads (here: in >= 95% of the injections), <= 1% false alarms on normal
loads. Every target is printed as met or MISSED; the test asserts the ones SPC meets and
lists the ones it misses in KNOWN_MISSES, with why:
- seasonal, first three weeks: the weekly baseline needs a window of 3 weeks, so weekends
  alarm until then (3.3% over all loads; from week 4 on, 0.4%).
- a 50% drop on the 10%-noise series: 92% caught on arrival. While the history is short the
  limits are widened for the uncertainty of their own estimate (spc.stats.estimation_factor,
  x2.95 at 8 points, x1.29 at 30), and a 5-sigma drop can stay inside them; without the
  widening, false alarms were 2-3% on every noisy kind (a point of normal noise falls beyond
  3 estimated sigmas 6.9% of the time with 8 points, 1.3% with 30).
- drift of 1% a load within 10 loads: 79% on the seasonal series (3% noise) and 19% on the
  10%-noise one, where it stays inside the noise for ~10 loads (the plain z-score: 0% and
  25%). On the 2%-noise series, 97%.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, median, stdev
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from releasekit.spc.model import Observation, Settings
from releasekit.spc.stats import judge

from .spc_histories import KINDS, Series, drifted, dropped, make_series

pytestmark = pytest.mark.benchmark

SEED = 20260101
LOADS = 120
SERIES_PER_KIND = 12
INJECTIONS_PER_SERIES = 6
SETTINGS = Settings(window=30, min_history=8)
DRIFT_LOADS = 20
DRIFT_TARGET = 10

Method = Callable[[Sequence[Observation], Observation], tuple[str, ...]]
LEVEL_KINDS = ("steady", "seasonal", "noisy", "constant")
SUDDEN: dict[str, tuple[tuple[str, ...], Callable[[Series, int, random.Random], float]]] = {
    "drop 50%": ((*LEVEL_KINDS, "growing"), lambda s, p, rng: dropped(s, p, 0.5)),
    "drop 90%": ((*LEVEL_KINDS, "growing"), lambda s, p, rng: dropped(s, p, 0.9)),
    "unit error x100": (LEVEL_KINDS, lambda s, p, rng: s.points[p].value * 100),
    "null spike 0 -> 5-30%": (("null_fraction",), lambda s, p, rng: rng.uniform(0.05, 0.30)),
}


def spc(history: Sequence[Observation], point: Observation) -> tuple[str, ...]:
    return judge(history, point, SETTINGS).rules


def zscore(history: Sequence[Observation], point: Observation) -> tuple[str, ...]:
    last = [o.value for o in history[-14:]]
    mean, spread = fmean(last), stdev(last)
    if spread == 0:
        return ("z",) if point.value != mean else ()
    return ("z",) if abs(point.value - mean) / spread > 3 else ()


METHODS: dict[str, Method] = {"spc": spc, "z-score": zscore}
KNOWN_MISSES = {
    "false alarms <= 1% on seasonal",
    "sudden >= 95% on drop 50% / noisy",
    *(f"drift within 10 loads on {kind}" for kind in ("seasonal", "noisy")),
}


@dataclass
class Tally:
    hits: int = 0
    total: int = 0
    rules: Counter[str] = field(default_factory=Counter)

    def add(self, rules: tuple[str, ...]) -> None:
        self.total += 1
        self.hits += bool(rules)
        self.rules.update(rules)

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 0.0


def _histories(rng: random.Random) -> list[Series]:
    return [make_series(kind, LOADS, rng) for kind in KINDS for _ in range(SERIES_PER_KIND)]


def _false_alarms(series: list[Series], method: Method) -> dict[str, Tally]:
    """Per kind, plus `seasonal from week 4` (once the window may hold 3 weeks)."""
    tallies: dict[str, Tally] = {kind: Tally() for kind in (*KINDS, "seasonal from week 4")}
    for one in series:
        for i in range(SETTINGS.min_history, LOADS):
            rules = method(one.points[max(0, i - SETTINGS.window) : i], one.points[i])
            tallies[one.kind].add(rules)
            if one.kind == "seasonal" and i > 21:
                tallies["seasonal from week 4"].add(rules)
    return tallies


def _sudden(series: list[Series], rng: random.Random) -> dict[tuple[str, str, str], Tally]:
    """Per (anomaly, kind, method): the anomalous load judged against the history before it."""
    tallies: dict[tuple[str, str, str], Tally] = {}
    for anomaly, (kinds, inject) in SUDDEN.items():
        for one in (s for s in series if s.kind in kinds):
            for position in rng.sample(range(SETTINGS.min_history, LOADS), INJECTIONS_PER_SERIES):
                point = Observation(inject(one, position, rng), one.points[position].at)
                history = one.points[max(0, position - SETTINGS.window) : position]
                for name, method in METHODS.items():
                    tallies.setdefault((anomaly, one.kind, name), Tally()).add(method(history, point))
    return tallies


def _loads_to_catch(one: Series, start: int, method: Method) -> int | None:
    """How many drifting loads until `method` flags one; None: none of them."""
    for step in range(DRIFT_LOADS):
        i = start + step
        if method(one.points[max(0, i - SETTINGS.window) : i], one.points[i]):
            return step + 1
    return None


def _drift(series: list[Series], rng: random.Random) -> dict[tuple[str, str], list[int | None]]:
    found: dict[tuple[str, str], list[int | None]] = {}
    for one in (s for s in series if s.kind in LEVEL_KINDS):
        for start in rng.sample(range(SETTINGS.min_history, LOADS - DRIFT_LOADS), INJECTIONS_PER_SERIES):
            moved = drifted(one, start, 0.01, DRIFT_LOADS)
            for name, method in METHODS.items():
                found.setdefault((one.kind, name), []).append(_loads_to_catch(moved, start, method))
    return found


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def _sudden_table(tallies: dict[tuple[str, str, str], Tally]) -> Table:
    table = Table(title="Sudden anomalies: caught on the load where they arrive")
    for column in ("anomaly", "series", "injected", "SPC", "z-score", "SPC rules that fired"):
        table.add_column(column)
    for anomaly, kind in dict.fromkeys((a, k) for a, k, _ in tallies):
        ours, theirs = tallies[(anomaly, kind, "spc")], tallies[(anomaly, kind, "z-score")]
        fired = ", ".join(f"{rule} {n}" for rule, n in ours.rules.most_common())
        table.add_row(anomaly, kind, str(ours.total), _pct(ours.rate), _pct(theirs.rate), fired)
    ours, theirs = _overall_sudden(tallies).values()
    table.rows[-1].end_section = True
    table.add_row("all sudden", "all", str(ours.total), _pct(ours.rate), _pct(theirs.rate), "")
    return table


def _overall_sudden(tallies: dict[tuple[str, str, str], Tally]) -> dict[str, Tally]:
    overall = {name: Tally() for name in METHODS}
    for (_, _, name), tally in tallies.items():
        overall[name].hits += tally.hits
        overall[name].total += tally.total
    return overall


def _drift_figures(found: list[int | None]) -> dict[str, Any]:
    caught = [n for n in found if n is not None]
    within = sum(1 for n in caught if n <= DRIFT_TARGET)
    return {
        "injected": len(found),
        "within_10": within / len(found),
        "mean": round(fmean(caught), 1) if caught else None,
        "median": median(caught) if caught else None,
        "max": max(caught) if caught else None,
        "missed_in_20": len(found) - len(caught),
    }


def _drift_table(found: dict[tuple[str, str], list[int | None]]) -> Table:
    table = Table(title=f"Slow drift, +1% a load over {DRIFT_LOADS} loads: loads until caught")
    for column in ("series", "injected", "method", "<= 10 loads", "mean", "median", "max", "missed"):
        table.add_column(column)
    for (kind, name), loads in found.items():
        f = _drift_figures(loads)
        table.add_row(
            kind, str(f["injected"]), name, _pct(f["within_10"]),
            *(str(f[k]) for k in ("mean", "median", "max", "missed_in_20")),
        )  # fmt: skip
    return table


def _false_alarm_table(alarms: dict[str, dict[str, Tally]]) -> Table:
    table = Table(title="False alarms on normal loads")
    for column in ("series", "normal loads", "SPC", "z-score", "SPC rules that fired"):
        table.add_column(column)
    ours, theirs = alarms["spc"], alarms["z-score"]
    for kind in ours:
        fired = ", ".join(f"{rule} {n}" for rule, n in ours[kind].rules.most_common())
        table.add_row(kind, str(ours[kind].total), _pct(ours[kind].rate), _pct(theirs[kind].rate), fired)
    table.rows[-1].end_section = True
    spc_all, z_all = _overall_alarms(ours), _overall_alarms(theirs)
    table.add_row("all", str(spc_all.total), _pct(spc_all.rate), _pct(z_all.rate), "")
    return table


def _overall_alarms(tallies: dict[str, Tally]) -> Tally:
    overall = Tally()
    for kind in KINDS:
        overall.hits += tallies[kind].hits
        overall.total += tallies[kind].total
        overall.rules.update(tallies[kind].rules)
    return overall


def _targets(
    sudden: dict[tuple[str, str, str], Tally],
    drift: dict[tuple[str, str], list[int | None]],
    alarms: dict[str, Tally],
) -> dict[str, bool]:
    met = {f"sudden >= 95% on {a} / {k}": t.rate >= 0.95 for (a, k, m), t in sudden.items() if m == "spc"}
    for (kind, name), found in drift.items():
        if name == "spc":
            met[f"drift within 10 loads on {kind}"] = _drift_figures(found)["within_10"] >= 0.95
    met |= {f"false alarms <= 1% on {k}": t.rate <= 0.01 for k, t in alarms.items()}
    met["false alarms <= 1% overall"] = _overall_alarms(alarms).rate <= 0.01
    return met


def test_spc_detection_against_z_score(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    series = _histories(rng)
    alarms = {name: _false_alarms(series, method) for name, method in METHODS.items()}
    sudden = _sudden(series, rng)
    drift = _drift(series, rng)

    console = Console(width=160)
    console.print(_false_alarm_table(alarms), _sudden_table(sudden), _drift_table(drift))
    targets = _targets(sudden, drift, alarms["spc"])
    for target, ok in targets.items():
        console.print(f"{'met   ' if ok else 'MISSED'}  {target}")
    normal_loads = _overall_alarms(alarms["spc"]).total
    report = {
        "normal_loads": normal_loads,
        "false_alarm_rate": {m: {k: t.rate for k, t in a.items()} for m, a in alarms.items()},
        "sudden_detection_rate": {" / ".join(k): t.rate for k, t in sudden.items()},
        "drift": {" / ".join(k): _drift_figures(f) for k, f in drift.items()},
        "targets": targets,
    }
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "spc_detection.json").write_text(
        json.dumps(report, indent=2)
    )
    assert normal_loads >= 1000
    assert [target for target, ok in targets.items() if not ok and target not in KNOWN_MISSES] == []
