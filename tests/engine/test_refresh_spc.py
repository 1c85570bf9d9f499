"""Statistical process control on real refreshes: every version a refresh writes is
measured in the warehouse and judged against the environment's history of that model;
`error` holds anomalous data back, `warn` publishes it and alerts a real webhook, and
`--accept` publishes a real change and starts the history again. Real git, real dbt,
real DuckDB and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from releasekit import api
from releasekit.alerts.payload import alert_schema
from releasekit.api import Workspace
from releasekit.errors import NotFoundError
from tests.support.refresh_bench import Bench, duckdb_bench, postgres_bench
from tests.support.refresh_project import insert
from tests.support.webhook import Receiver

pytestmark = pytest.mark.integration

# orders reads customers with a left join: an order of an unknown customer has no name,
# the way a broken load shows up as NULLs downstream.
SPC_FILES = {
    "models/orders.sql": (
        "{{ config(materialized='table') }}\n"
        "select o.id, o.customer_id, c.name, o.amount\n"
        "from {{ ref('stg_orders') }} o left join {{ ref('customers') }} c using (customer_id)\n"
    ),
    "environments/dev.yml": "version: 1\nschema: dev\nbranch: main\nspc: {severity: error}\n",
}


class Loader:
    """Loads orders as a daily job would: 8-12 new orders of 10-50 each, per load."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.random = random.Random(15)
        self.next_id = 100

    def orders(
        self, count: int | None = None, *, amount: float = 1.0, customer: int | None = None
    ) -> list[int]:
        count = count if count is not None else self.random.randint(8, 12)
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        rows = [
            (i, customer or self.random.choice((1, 2)), round(self.random.randint(10, 50) * amount))
            for i in ids
        ]
        insert(self.bench.execute, "orders", rows)
        return ids

    def remove(self, ids: list[int]) -> None:
        self.bench.execute(f"delete from raw.orders where id in ({', '.join(map(str, ids))})")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    if request.param == "duckdb":
        yield duckdb_bench(tmp_path / "repo", SPC_FILES)
        return
    with postgres_bench(tmp_path / "repo", SPC_FILES) as made:
        yield made


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _refresh(bench: Bench, receiver: Receiver, **options: object) -> api.RefreshResult:
    environ = {**os.environ, "RELEASEKIT_ALERT_WEBHOOK": receiver.url}
    return api.refresh(Workspace.open(bench.repo, environ=environ), "dev", **options)  # type: ignore[arg-type]


@contextlib.contextmanager
def bench_rollback(bench: Bench, refresh_after: Callable[[], object] | None = None) -> Iterator[None]:
    """Put raw.orders back as it was once the block is done (then refresh, if asked): each
    anomaly is injected on the same ordinary history."""
    bench.execute("create table raw.orders_saved as select * from raw.orders")
    try:
        yield
    finally:
        bench.execute("delete from raw.orders")
        bench.execute("insert into raw.orders select * from raw.orders_saved")
        bench.execute("drop table raw.orders_saved")
    if refresh_after is not None:
        refresh_after()


def _severity(bench: Bench, severity: str) -> None:
    (bench.repo / "environments" / "dev.yml").write_text(
        f"version: 1\nschema: dev\nbranch: main\nspc: {{severity: {severity}}}\n"
    )


def _orders_served(bench: Bench) -> int:
    return int(bench.sql("select count(*) from dev.orders")[0][0])


def _flagged(result: api.RefreshResult) -> set[str]:
    return {f"{f.name} {f.metric}" for f in result.quality.findings}


@pytest.mark.slow
def test_ordinary_loads_publish_and_each_anomaly_is_held_at_error_then_alerted_at_warn(
    bench: Bench, receiver: Receiver
) -> None:
    bench.deploy()
    load = Loader(bench)
    for _ in range(12):
        load.orders()
        result = _refresh(bench, receiver)
        assert result.outcome == "published", result.failures
        assert not result.quality.findings, [f.describe() for f in result.quality.findings]
    assert result.quality.judged > 0  # the later loads had history enough to be judged
    assert receiver.requests == []  # nothing to alert about
    history = api.spc(bench.workspace(), "dev", "orders")
    assert {s.metric for s in history} >= {"row_count", "null_fraction.name", "mean.amount"}
    assert all(len(s.points) == 13 for s in history)  # the deploy and twelve refreshes

    anomalies: dict[str, tuple[Callable[[], object], str]] = {
        "volume drop": (
            lambda: bench.execute("delete from raw.orders where id % 10 <> 0"),
            "orders row_count",
        ),
        "unit error": (lambda: load.orders(40, amount=100), "orders mean.amount"),
        "null spike": (lambda: load.orders(12, customer=99), "orders null_fraction.name"),
    }
    for kind, (inject, metric) in anomalies.items():
        served = _orders_served(bench)
        before = bench.physical()
        with bench_rollback(bench):
            inject()
            held = _refresh(bench, receiver)
        assert held.outcome == "held", kind
        assert metric in _flagged(held), (kind, _flagged(held))
        assert all(f.severity == "error" for f in held.quality.findings)
        assert _orders_served(bench) == served and bench.physical() == before  # nothing published or left
        entry = api.releases(bench.workspace(), "dev")[-1]
        assert entry.outcome == "failed" and any(
            f.startswith("model.shop.orders: anomaly: ") for f in entry.failures
        ), kind

    alerts = len(receiver.requests)
    assert alerts == 3  # one per held-back refresh
    for request in receiver.requests:
        document = json.loads(request.body)
        jsonschema.validate(document, alert_schema())
        assert document["outcome"] == "held" and document["environment"] == "dev"

    _severity(bench, "warn")
    for kind, (inject, metric) in anomalies.items():
        with bench_rollback(bench, refresh_after=lambda: _refresh(bench, receiver)):
            inject()
            warned = _refresh(bench, receiver)
            assert warned.outcome == "published", kind
            assert metric in _flagged(warned), (kind, _flagged(warned))
            document = json.loads(receiver.requests[-1].body)
            assert document["outcome"] == "published" and document["kind"] == "refresh"
            assert any(f"{f['model']} {f['metric']}" == metric for f in document["findings"])
            assert "published" in document["text"]
    assert len(receiver.requests) > alerts + 2


@pytest.mark.slow
def test_accepting_a_real_change_publishes_it_and_starts_the_history_again(
    bench: Bench, receiver: Receiver
) -> None:
    bench.deploy()
    load = Loader(bench)
    for _ in range(9):
        load.orders()
        assert _refresh(bench, receiver).outcome == "published"
    bench.execute("delete from raw.orders where id < 150")  # last year's orders archived, for good

    held = _refresh(bench, receiver)
    assert held.outcome == "held" and "orders row_count" in _flagged(held)
    accepted = _refresh(bench, receiver, accept=["orders"], reason="2025 orders archived")
    assert accepted.outcome == "published"
    assert accepted.quality.accepted == {"model.shop.orders": "2025 orders archived"}
    assert all(f.accepted for f in accepted.quality.findings if f.name == "orders")
    entry = api.releases(bench.workspace(), "dev")[-1]
    assert entry.spc["accepted"] == {"model.shop.orders": "2025 orders archived"}

    load.orders()
    after = _refresh(bench, receiver)  # judged against the new baseline alone: too short to judge
    assert after.outcome == "published" and not after.quality.findings
    [rows] = [s for s in api.spc(bench.workspace(), "dev", "orders") if s.metric == "row_count"]
    assert [p.accepted for p in rows.points][-2:] == [True, False]
    assert rows.last.verdict.limits is None


def test_accepting_a_model_the_refresh_does_not_write_changes_nothing(tmp_path: Path) -> None:
    bench = duckdb_bench(tmp_path / "repo", SPC_FILES)
    bench.deploy()
    Loader(bench).orders()
    before, entries = bench.physical(), len(api.releases(bench.workspace(), "dev"))
    with pytest.raises(NotFoundError, match="--accept names no model this run writes: region_names"):
        bench.refresh(accept=["region_names"], reason="it never changes")
    assert bench.physical() == before and len(api.releases(bench.workspace(), "dev")) == entries
    with pytest.raises(Exception, match="--accept needs --reason"):
        bench.refresh(accept=["orders"])


def test_every_written_version_is_measured_and_kept_with_the_release(tmp_path: Path) -> None:
    bench = duckdb_bench(tmp_path / "repo", SPC_FILES)
    deployed = bench.deploy()
    assert {m.name for m in deployed.quality.measurements} == {
        "customers",
        "orders",
        "events",
        "region_names",
        "regions",  # a seed is data too
    }
    Loader(bench).orders(10)
    refreshed = bench.refresh()
    assert refreshed.outcome == "published"
    [orders] = [m for m in refreshed.quality.measurements if m.name == "orders"]
    assert orders.values["row_count"] == 13 and orders.values["null_fraction.name"] == 0
    assert {m.name for m in refreshed.quality.measurements} == {"orders"}  # nothing else was written
    records = bench.workspace().store.metrics("dev")
    assert [(r.kind, r.outcome, r.release_id) for r in records] == [
        ("deploy", "published", deployed.release_id),
        ("refresh", "published", refreshed.release_id),
    ]
    [series] = [s for s in api.spc(bench.workspace(), "dev", "orders") if s.metric == "row_count"]
    assert [p.verdict.value for p in series.points] == [3, 13]
    assert series.last.verdict.limits is None  # two points: too little history to judge


@pytest.mark.slow
def test_a_webhook_that_cannot_be_reached_never_fails_the_refresh(tmp_path: Path) -> None:
    files = {**SPC_FILES, "environments/dev.yml": "version: 1\nschema: dev\nspc: {min_history: 3}\n"}
    bench = duckdb_bench(tmp_path / "repo", files)
    bench.deploy()
    load = Loader(bench)
    for _ in range(3):
        load.orders(10)
        assert bench.refresh().outcome == "published"
    closed = Receiver()
    url = closed.url.replace("/hook", "/services/T0001/B0002/secret-token-123")
    closed.close()  # nothing listens there any more
    bench.execute("delete from raw.orders where id >= 110")

    environ = {**os.environ, "RELEASEKIT_ALERT_WEBHOOK": url}
    result = api.refresh(Workspace.open(bench.repo, environ=environ), "dev")

    assert result.outcome == "published" and "orders row_count" in _flagged(result)
    assert result.alert is not None and not result.alert.sent and result.alert.attempts == 3
    assert "secret-token-123" not in result.alert.error and "***" in result.alert.error
