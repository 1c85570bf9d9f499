"""The S3 store when the store misbehaves, through a real HTTP fault proxy (tests/s3_faults.py).

1. Transient faults (500, 503, dropped connections, answers lost after the store acted)
   are retried a bounded number of times and the operation succeeds, once.
2. Faults that last: a StateError naming the operation and the s3:// object, within
   seconds; an unreachable endpoint: a StateError naming the endpoint and the bucket.
   S3 writes are atomic: a failed append leaves no entry, and the next one gets its seq.
3. The engine over a failing store (the real CLI, real dbt and DuckDB): a failed write of
   the `switching` entry stops the deploy (exit 2) before the warehouse changes; a failed
   write of the `succeeded` entry after the switch is settled by the rerun.
4. Secrets: the AWS secret key and session token never reach output, logs, the bucket or
   an error's text.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _s3_workers import branch, lease_bytes

from releasekit.config.model import Connection
from releasekit.errors import LockMismatchError, StateError
from releasekit.state.remote import ObjectStateStore
from releasekit.state.s3 import ATTEMPTS, S3Objects
from releasekit.warehouse.base import ReleaseMarker
from releasekit.warehouse.duckdb import DuckDBWarehouse
from tests.support.cli_runs import RELEASEKIT, Run, cli_env
from tests.support.ledger_checks import assert_settled_once, release_views
from tests.support.projects import commit, make_repo
from tests.support.s3 import REGION, SECRET_ACCESS_KEY, SESSION_TOKEN, Bucket
from tests.support.s3_faults import FaultProxy, unreachable
from tests.support.state_factories import make_entry


@pytest.fixture
def proxy(bucket: Bucket) -> Iterator[FaultProxy]:
    with FaultProxy(bucket.endpoint) as proxy:
        yield proxy


@pytest.fixture
def store(bucket: Bucket, proxy: FaultProxy) -> ObjectStateStore:
    """A store reaching the bucket through the proxy; a fresh client, so botocore's retry
    quota is whole."""
    return bucket.store(endpoint=proxy.url)


def key_pattern(key: str) -> str:
    return "/team/state/" + re.escape(key) + "$"


def objects(bucket: Bucket) -> dict[str, bytes]:
    client = bucket.client()
    return {key: client.get_object(Bucket=bucket.name, Key=key)["Body"].read() for key in bucket.keys()}  # noqa: SIM118


def list_pattern(bucket: Bucket) -> str:
    return f"^/{bucket.name}$"  # ListObjectsV2 is a GET of the bucket itself


# --- 1. transient faults: retried, then done -------------------------------------------


def test_a_store_failing_twice_then_recovering_serves_every_operation(
    bucket: Bucket, proxy: FaultProxy, store: ObjectStateStore
) -> None:
    # 503 SlowDown is throttling, which botocore backs off from for seconds; 500 for 50 ms.
    rules = [
        proxy.answer(500, "PUT", key_pattern("locks/prod.json"), times=2),
        proxy.answer(503, "PUT", key_pattern("ledger/prod/00000001.json"), times=2),
        proxy.answer(500, "GET", key_pattern("ledger/prod/00000001.json"), times=2),
        proxy.answer(500, "GET", list_pattern(bucket), times=2),
        proxy.answer(500, "DELETE", key_pattern("locks/prod.json"), times=2),
    ]
    with store.lock("prod", owner="me"):
        store.append(make_entry(note="one"))
        assert [entry.note for entry in bucket.store(endpoint=proxy.url).entries("prod")] == ["one"]
    assert [rule.hits for rule in rules] == [2] * len(rules)  # each refused twice, then served
    assert bucket.store().lock_holders() == []
    assert [entry.note for entry in bucket.store().entries("prod")] == ["one"]


@pytest.mark.parametrize("after", [False, True], ids=["before-the-store", "answer-lost"])
def test_a_dropped_connection_is_retried_and_the_write_happens_once(
    bucket: Bucket, proxy: FaultProxy, store: ObjectStateStore, after: bool
) -> None:
    # `after`: the store carried the write out, its answer was lost, botocore sent it again
    # and was refused (If-None-Match / If-Match): the store sees its own write, not a rival's.
    for key in ("ledger/prod/00000001.json", "locks/prod.json", "registry/review.json"):
        proxy.drop("PUT", key_pattern(key), times=1, after=after)
    with store.lock("prod", owner="me") as info:
        assert store.lock_holders() == [info]
        entry = store.append(make_entry(note="once"))
        store.register(branch("review"))
        store.append(make_entry(note="twice"))
    assert entry.seq == 1
    assert [(e.seq, e.note) for e in bucket.store().entries("prod")] == [(1, "once"), (2, "twice")]
    assert [record.branch for record in bucket.store().branches()] == ["review"]
    assert bucket.store().lock_holders() == []
    assert len(proxy.requests("PUT", key_pattern("ledger/prod/00000001.json"))) == 2


# --- 2. faults that last ---------------------------------------------------------------

LASTING = [
    # (status, method, key or "list", operation named, what to do)
    (503, "PUT", "ledger/prod/00000002.json", "PutObject", "append"),
    (500, "GET", "ledger/prod/00000001.json", "GetObject", "entries"),
    (500, "GET", "list", "ListObjectsV2", "entries"),
    (500, "HEAD", "artifacts/graph", "HeadObject", "has_artifact"),
    (500, "DELETE", "registry/review.json", "DeleteObject", "unregister"),
]


@pytest.mark.parametrize(("status", "method", "key", "operation", "action"), LASTING, ids=lambda v: str(v))
def test_a_store_that_keeps_failing_is_a_state_error_naming_operation_and_object(
    bucket: Bucket,
    proxy: FaultProxy,
    store: ObjectStateStore,
    status: int,
    method: str,
    key: str,
    operation: str,
    action: str,
) -> None:
    store.append(make_entry(note="one"))
    store.register(branch("review"))  # a branch environment's name is never a declared one's
    fresh = bucket.store(endpoint=proxy.url)  # nothing cached, a whole retry quota
    before = objects(bucket)
    pattern = list_pattern(bucket) if key == "list" else key_pattern(key)
    rule = proxy.answer(status, method, pattern)
    actions: dict[str, Callable[[], object]] = {
        "append": lambda: fresh.append(make_entry(note="two")),
        "entries": lambda: fresh.entries("prod"),
        "has_artifact": lambda: fresh.has_artifact("graph"),
        "unregister": lambda: fresh.unregister("review"),
    }
    with pytest.raises(StateError) as raised:
        actions[action]()
    where = bucket.url + ("/ledger/prod" if key == "list" else f"/{key}")
    assert str(raised.value).startswith(f"S3 {operation} of {where} failed: {status} "), str(raised.value)
    assert f"tried {ATTEMPTS} times" in str(raised.value.hint)
    assert rule.hits == ATTEMPTS  # bounded: then it gives up

    # S3 writes are atomic: nothing half-written; once healthy, the next append is seq 2.
    assert objects(bucket) == before
    proxy.heal()
    assert fresh.append(make_entry(note="two")).seq == 2
    assert [e.note for e in bucket.store().entries("prod")] == ["one", "two"]


def test_a_connection_dropped_every_time_is_a_state_error_naming_the_object(
    bucket: Bucket, proxy: FaultProxy, store: ObjectStateStore
) -> None:
    proxy.drop("PUT", key_pattern("ledger/prod/00000001.json"))
    with pytest.raises(StateError) as raised:
        store.append(make_entry())
    assert str(raised.value).startswith(
        f"S3 PutObject of {bucket.url}/ledger/prod/00000001.json failed after "
    )
    assert bucket.keys() == []


def test_an_unreachable_endpoint_is_a_state_error_naming_it_and_the_bucket(bucket: Bucket) -> None:
    with unreachable() as endpoint:
        store = bucket.store(endpoint=endpoint)
        for action in (lambda: store.entries("prod"), lambda: store.append(make_entry())):
            with pytest.raises(StateError) as raised:
                action()
            # Finding prod's ledger reads its registry record first (a branch's lives apart).
            assert re.search(rf"of {re.escape(bucket.url)}/(registry|ledger)/prod", str(raised.value))
            assert f"could not reach {endpoint} (tried {ATTEMPTS} times)" in str(raised.value)


def test_an_unreachable_endpoint_from_the_environment_is_named(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the CLI does: no endpoint in releasekit.yml, AWS_ENDPOINT_URL_S3 in the environment.
    with unreachable() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        store = ObjectStateStore(S3Objects(bucket.url, region=REGION))
        with pytest.raises(StateError, match=re.escape(f"could not reach {endpoint} ")):
            store.environments()


def test_a_failing_store_is_reported_by_the_write_that_failed_not_by_letting_go_of_the_lock(
    bucket: Bucket, proxy: FaultProxy, store: ObjectStateStore
) -> None:
    with pytest.raises(StateError) as raised, store.lock("prod", owner="me"):
        # From here on every write fails: the append's, and the lock's release too.
        refused = [proxy.answer(500, method, ".") for method in ("PUT", "DELETE")]
        store.append(make_entry())
    assert str(raised.value).startswith(f"S3 PutObject of {bucket.url}/ledger/prod/00000001.json failed: 500")
    assert [rule.hits for rule in refused] == [ATTEMPTS, ATTEMPTS]  # the release was tried
    assert bucket.keys() == [f"{bucket.prefix}/locks/prod.json"]  # and the lease left to expire


# --- 3. the engine over a failing store ------------------------------------------------


def run_over_s3(repo: Path, bucket: Bucket, endpoint: str, *args: str) -> Run:
    """The real `releasekit` command with its state in `bucket`, reached at `endpoint`."""
    environ = {
        **cli_env(),
        **bucket.environ,
        "RELEASEKIT_STATE_URL": bucket.url,
        "AWS_ENDPOINT_URL_S3": endpoint,
    }
    started = time.monotonic()
    result = subprocess.run(
        [RELEASEKIT, *args], cwd=repo, capture_output=True, text=True, timeout=180, env=environ
    )
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def served(repo: Path) -> tuple[ReleaseMarker | None, dict[str, str]]:
    """The dev schema's release marker and views (view -> relation), read only."""
    settings = {"path": str(repo / "warehouse.duckdb"), "config_options": {"access_mode": "READ_ONLY"}}
    with DuckDBWarehouse(Connection(type="duckdb", database="warehouse", settings=settings)) as warehouse:
        return warehouse.read_marker("dev"), warehouse.view_targets("dev")


def said(run: Run) -> str:
    """stderr and stdout with rich's line wrapping undone."""
    return " ".join((run.stderr + run.stdout).split())


@pytest.mark.slow
def test_deploy_through_a_store_failing_around_the_switch(
    bucket: Bucket, proxy: FaultProxy, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    runs = [first := run_over_s3(repo, bucket, proxy.url, "deploy", "dev")]
    assert first.code == 0, first.text()
    release_1 = served(repo)
    assert release_1[0] is not None and release_1[0].release_id == 1
    (repo / "models/revenue.sql").write_text(
        "select customer_id, sum(amount_cents) as revenue_cents from {{ ref('orders') }}\n"
        "where 2 > 1 group by 1\n"
    )
    commit(repo, "edit revenue")

    # The `switching` entry cannot be written: nothing switches.
    proxy.answer(500, "PUT", key_pattern("ledger/dev/00000003.json"))
    runs.append(failed := run_over_s3(repo, bucket, proxy.url, "deploy", "dev"))
    assert failed.code == 2, failed.text()
    assert f"S3 PutObject of {bucket.url}/ledger/dev/00000003.json failed: 500 InternalError" in said(failed)
    assert served(repo) == release_1
    assert len(bucket.store().entries("dev")) == 2
    assert bucket.store().lock_holders() == []

    # The `succeeded` entry cannot be written: the switch was recorded, and happened.
    proxy.heal()
    proxy.answer(500, "PUT", key_pattern("ledger/dev/00000004.json"))
    runs.append(failed := run_over_s3(repo, bucket, proxy.url, "deploy", "dev"))
    assert failed.code == 2, failed.text()
    assert f"S3 PutObject of {bucket.url}/ledger/dev/00000004.json failed: 500 InternalError" in said(failed)
    marker, views = served(repo)
    assert marker is not None and marker.release_id == 2
    [*_, pending] = bucket.store().entries("dev")
    assert (pending.seq, pending.release_id, pending.outcome) == (3, 2, "switching")

    # The store is healthy again: the rerun settles the switch from the warehouse's marker.
    proxy.heal()
    runs.append(rerun := run_over_s3(repo, bucket, proxy.url, "deploy", "dev"))
    assert rerun.code == 0, rerun.text()
    entries = bucket.store().entries("dev")
    assert [(e.seq, e.release_id, e.outcome) for e in entries] == [
        (1, 1, "switching"),
        (2, 1, "succeeded"),
        (3, 2, "switching"),
        (4, 2, "succeeded"),
    ]
    assert "the switch had committed" in entries[-1].note
    assert_settled_once(entries)
    assert release_views(entries)[2] == views == served(repo)[1]
    assert_no_secrets(runs, repo, bucket)
    print("\ndeploys took " + ", ".join(f"{run.seconds:.1f} s (exit {run.code})" for run in runs))


# --- 4. secrets ------------------------------------------------------------------------

SECRETS = (SECRET_ACCESS_KEY, SESSION_TOKEN)


def assert_no_secrets(runs: list[Run], repo: Path, bucket: Bucket) -> None:
    for run in runs:
        for secret in SECRETS:
            assert secret not in run.stdout + run.stderr, run.text()
    for folder, _, files in os.walk(repo):
        if ".git" in Path(folder).relative_to(repo).parts:
            continue
        for name in files:
            data = (Path(folder) / name).read_bytes()
            assert not any(secret.encode() in data for secret in SECRETS), Path(folder) / name
    for key, data in objects(bucket).items():
        assert not any(secret.encode() in data for secret in SECRETS), key


def test_secrets_never_reach_output_logs_the_bucket_or_errors(bucket: Bucket, tmp_path: Path) -> None:
    # Successful and failing deploys are checked by the deploy test above; these are the rest.
    repo = make_repo(tmp_path / "repo")
    runs = [status := run_over_s3(repo, bucket, bucket.endpoint, "status")]
    assert status.code == 0, status.text()
    bucket.write("locks/dev.json", lease_bytes("dev"))
    runs.append(
        refused := run_over_s3(repo, bucket, bucket.endpoint, "unlock", "dev", "--id", "ffffffffffff")
    )
    assert refused.code == 2 and "is not 'dev''s lock" in said(refused), refused.text()
    with unreachable() as nowhere:
        for command in (["status"], ["deploy", "dev"]):
            runs.append(cut_off := run_over_s3(repo, bucket, nowhere, *command))
            assert cut_off.code == 2 and f"could not reach {nowhere}" in said(cut_off), cut_off.text()
    assert_no_secrets(runs, repo, bucket)

    # Nor in the text of the errors the API raises.
    errors: list[StateError] = []
    with unreachable() as nowhere:
        try:
            bucket.store(endpoint=nowhere).entries("dev")
        except StateError as exc:
            errors.append(exc)
    try:
        bucket.store().break_lock("dev", "ffffffffffff")
    except LockMismatchError as exc:
        errors.append(exc)
    with FaultProxy(bucket.endpoint) as proxy:
        proxy.answer(500, "*", ".")
        try:
            bucket.store(endpoint=proxy.url).append(make_entry(env="dev"))
        except StateError as exc:
            errors.append(exc)
    assert len(errors) == 3
    for error in errors:
        for secret in SECRETS:
            assert secret not in f"{error!s} {error!r} {error.hint}"
