"""What every StateStore promises about metric records (statistical process control):
append-only per environment, every field round-trips, environments stay apart, a corrupt
record is an error that names it, and `doctor`/`migrate` know the documents."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from releasekit.errors import StateError
from releasekit.state.base import Measurement, MetricRecord, StateStore
from releasekit.state.documents import check_document
from releasekit.state.local import LocalStore


def make_record(**changes: object) -> MetricRecord:
    record = MetricRecord(
        env="prod",
        kind="refresh",
        outcome="published",
        release_id=7,
        git_sha="0123456789abcdef0123456789abcdef01234567",
        who="Ada <ada@example.com>",
        at="2026-12-08T06:00:00+00:00",
        measurements=(
            Measurement(
                unique_id="model.shop.orders",
                name="orders",
                relation="orders__a1b2c3d4",
                written_at="2026-12-08T05:59:00+00:00",
                values={"row_count": 1200.0, "null_fraction.email": 0.0, "mean.amount": None},
            ),
        ),
        accepted={"model.shop.orders": "a new market opened"},
        flagged={"model.shop.orders row_count": ("beyond_limits", "run_of_eight")},
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def test_records_round_trip_in_order_per_environment(store: StateStore) -> None:
    assert store.metrics("prod") == []
    first = store.record_metrics(make_record(seq=9))
    second = store.record_metrics(make_record(outcome="held", accepted={}, flagged={}))
    store.record_metrics(make_record(env="feature/x", outcome="checked"))

    assert (first.seq, second.seq) == (1, 2)
    assert store.metrics("prod") == [first, second]
    assert first == replace(make_record(), seq=1)
    assert [r.outcome for r in store.metrics("feature/x")] == ["checked"]


def test_values_that_are_not_finite_are_stored_as_missing(store: StateStore) -> None:
    odd = make_record(
        measurements=(replace(make_record().measurements[0], values={"mean.x": float("nan"), "n": 3}),)
    )
    store.record_metrics(odd)
    [stored] = store.metrics("prod")
    assert stored.measurements[0].values == {"mean.x": None, "n": 3.0}


def test_a_corrupt_record_is_named_and_left_alone(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / ".releasekit")
    store.record_metrics(make_record())
    [path] = (tmp_path / ".releasekit" / "metrics").glob("*/00000001.json")
    path.write_text('{"format": "releasekit.metrics/1", "env": "prod"}')
    with pytest.raises(StateError, match="missing") as raised:
        store.metrics("prod")
    assert str(path) in str(raised.value)


def test_doctor_reads_metric_records_and_catches_one_filed_under_another_environment(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / ".releasekit")
    store.record_metrics(make_record())
    [key] = [k for k in store.object_keys() if k.startswith("metrics/")]
    data = store.read_object(key)
    assert data is not None
    assert check_document(key, data, where=key) == "metric record"
    with pytest.raises(StateError, match="not what its key says"):
        check_document(key.replace("prod", "dev"), data, where="moved")
