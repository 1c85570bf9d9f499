"""How much of an environment's metric history a run reads: enough to judge what it
measured, not the whole history, and the verdicts equal those on the whole history."""

from __future__ import annotations

from pathlib import Path

from releasekit.config.model import SpcPolicy
from releasekit.engine.quality import judge_measurements, read_history
from releasekit.state.base import Measurement, MetricRecord
from releasekit.state.local import LocalStore

DAILY, RARE = "model.shop.orders", "model.shop.regions"


def _record(day: int, *, rare: bool, accepted: bool = False) -> MetricRecord:
    at = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T06:00:00+00:00"
    measured = [Measurement(DAILY, "orders", f"orders__{day}", at, {"row_count": 1000.0 + 10 * day})]
    if rare:
        measured.append(Measurement(RARE, "regions", f"regions__{day}", at, {"row_count": 20.0 + day % 3}))
    return MetricRecord(
        "prod", "refresh", "published", day, "a" * 40, "ci", at, tuple(measured),
        accepted={RARE: "new regions"} if accepted else {},
    )  # fmt: skip


def test_a_run_reads_what_its_models_need_and_judges_as_on_the_whole_history(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / ".releasekit")
    for day in range(300):  # regions is measured on 1 day in 10 only
        store.record_metrics(_record(day, rare=day % 10 == 0))
    policy = SpcPolicy()

    daily = read_history(store, "prod", [DAILY], lambda uid: policy)
    both = read_history(store, "prod", [DAILY, RARE], lambda uid: policy)

    assert len(daily) == 4 * policy.window  # 120 of 300: orders has its 30 points in them
    assert len(both) == 300  # regions needed more: 30 points reach back to day 0
    measured = (Measurement(DAILY, "orders", "x", "2026-12-01T06:00:00+00:00", {"row_count": 4000.0}),)
    whole = judge_measurements(measured, lambda uid: policy, store.metrics("prod"), {})
    assert judge_measurements(measured, lambda uid: policy, daily, {}) == whole
    assert whole.judged == 1 and not whole.findings


def test_an_acceptance_ends_the_history_a_model_needs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / ".releasekit")
    for day in range(300):
        store.record_metrics(_record(day, rare=day % 10 == 0, accepted=day == 250))
    policy = SpcPolicy()
    assert len(read_history(store, "prod", [RARE], lambda uid: policy)) == 4 * policy.window
