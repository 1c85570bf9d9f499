"""The whole flow with the state store in S3 (moto's server over HTTP), through the real
`releasekit` command, real git, dbt and DuckDB: what CI runners that are thrown away after
each job rely on. The DuckDB file lives outside the clones (one warehouse, as a real one
would be shared), and each clone is a job's working directory: nothing it keeps locally
(its `.releasekit/` holds only dbt's caches and logs) is needed by the next job.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from releasekit.errors import LockedError
from releasekit.state.base import STATE_AREAS
from releasekit.state.codec import env_key
from tests.support.cli_runs import Run
from tests.support.projects import BASE_FILES, PROFILE, commit, git, make_repo, write_files
from tests.support.s3 import Bucket
from tests.support.s3_cli import Holder, launch_s3, lease_holder, ok_s3, run_s3, said
from tests.support.warehouse_reads import sql, views

pytestmark = pytest.mark.integration

BRANCH = "feature/orders-v2"
FILES = {
    "environments/staging.yml": "version: 1\nschema: staging\nbranch: staging\npromotes_from: dev\n",
    "environments/prod.yml": (
        "version: 1\nschema: prod\nbranch: prod\npromotes_from: staging\nvars:\n  min_amount: 1\n"
    ),
}
LOCAL_ONLY = {"dbt", "logs"}  # what an S3-state project keeps in its local .releasekit/


def shared_warehouse_repo(tmp_path: Path, name: str, releasekit_yml: str | None = None) -> Path:
    """A repository whose DuckDB file is tmp_path/warehouse.duckdb, wherever it is cloned."""
    profile = PROFILE.replace("path: warehouse.duckdb", f"path: {tmp_path / 'warehouse.duckdb'}")
    extra = {**FILES, **({"releasekit.yml": releasekit_yml} if releasekit_yml else {})}
    return make_repo(tmp_path / name, extra, profile=profile)


def head(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", ref)


def stored(bucket: Bucket) -> list[str]:
    """Every key under the bucket's state prefix, relative to it."""
    everything = bucket.keys()  # a list: every key in the bucket
    return [key.removeprefix(f"{bucket.prefix}/") for key in everything]


def has_key(bucket: Bucket, key: str) -> bool:
    return key in stored(bucket)


def schemas(warehouse_dir: Path) -> set[str]:
    return {name for (name,) in sql(warehouse_dir, "select schema_name from duckdb_schemas()")}


def local_state(repo: Path) -> set[str]:
    folder = repo / ".releasekit"
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def table_rows(run: Run) -> list[list[str]]:
    """The body rows of the tables a command printed, cell by cell."""
    assert run.code == 0, run.text()
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in run.stdout.splitlines()
        if line.startswith("│")
    ]


@pytest.mark.slow
def test_deploy_branch_promote_rollback_over_s3_from_two_clones(tmp_path: Path, bucket: Bucket) -> None:
    shared = tmp_path  # holds warehouse.duckdb
    job1 = shared_warehouse_repo(tmp_path, "job-1")
    first = head(job1, "HEAD")

    out = ok_s3(job1, bucket, "deploy", "dev")
    assert "dev is now release 1" in out and "built 7, reused 0" in out
    assert has_key(bucket, "ledger/dev/00000002.json")  # switching, then succeeded

    # Job 1 brings a branch environment up; the registry record lands in the bucket.
    git(job1, "branch", BRANCH)
    out = ok_s3(job1, bucket, "env", "up", BRANCH)
    record = bucket.store().branch(BRANCH)
    assert record is not None and record.base == "dev" and f"schema {record.schema}" in out
    assert has_key(bucket, f"registry/{env_key(BRANCH)}.json")
    assert views(shared, record.schema) == views(shared, "dev")

    # Job 2, a fresh clone with no local state, finds it in the bucket and tears it down.
    job2 = tmp_path / "job-2"
    git(tmp_path, "clone", "-q", str(job1), str(job2))
    assert not (job2 / ".releasekit").exists()
    assert BRANCH in ok_s3(job2, bucket, "env", "list")
    out = ok_s3(job2, bucket, "env", "down", BRANCH)
    assert f"schema {record.schema} dropped" in out
    assert bucket.store().branch(BRANCH) is None
    assert not has_key(bucket, f"registry/{env_key(BRANCH)}.json")
    assert record.schema not in schemas(shared)

    # Promotion dev -> staging: nothing built, staging serves dev's very tables.
    out = ok_s3(job1, bucket, "promote", "staging")
    assert "staging is now release 1" in out and "built 0, reused 7" in out, out
    assert views(shared, "staging") == views(shared, "dev") and head(job1, "staging") == first
    assert bucket.store().entries("staging")[-1].promotion["from"] == "dev"

    # A second dev release, rolled back: dev serves release 1's views again.
    release_1 = views(shared, "dev")
    write_files(job1, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    second = commit(job1, "revenue v2")
    assert "dev is now release 2" in ok_s3(job1, bucket, "deploy", "dev")
    assert views(shared, "dev") != release_1
    assert "dev rolled back from release 2 to release 1" in ok_s3(job1, bucket, "rollback", "dev")
    assert views(shared, "dev") == release_1

    # Job 2 reads the whole history from the bucket (it ran none of it).
    git(job2, "pull", "-q", "--ff-only", "origin", "main")
    git(job2, "fetch", "-q", "origin", "staging:staging")
    ledger = [(row[1], row[2], row[3], row[5]) for row in table_rows(run_s3(job2, bucket, "releases", "dev"))]
    assert ledger == [
        ("1", "deploy", "succeeded", first[:7]),
        ("2", "deploy", "succeeded", second[:7]),
        ("1", "rollback", "succeeded", first[:7]),
    ], ledger
    staging = table_rows(run_s3(job2, bucket, "releases", "staging"))
    assert [(row[1], row[3], row[5], row[6]) for row in staging] == [("1", "succeeded", first[:7], "0")]
    status = run_s3(job2, bucket, "status")
    live = {row[0]: (row[2], row[3], row[5], row[6], row[7]) for row in table_rows(status)}
    assert (
        live
        == {
            "dev": ("1", first[:7], f"main {second[:7]}", "held", "in sync"),  # rolled back: held
            "staging": ("1", first[:7], f"staging {first[:7]}", "in sync", "in sync"),
            "prod": ("-", "-", "prod", "no branch", "-"),  # never promoted: nothing to be in sync with
        }
    ), status.stdout
    assert "dev: held since" in status.stdout
    assert f"rolled back from release 2 ({second[:7]})" in status.stdout

    # Nothing of the state is local: only dbt's caches and logs.
    assert local_state(job1) <= LOCAL_ONLY and local_state(job2) <= LOCAL_ONLY
    assert not (local_state(job1) | local_state(job2)) & {*STATE_AREAS, "locks"}
    areas = {key.split("/")[0] for key in stored(bucket)}
    assert {"ledger", "artifacts"} <= areas <= set(STATE_AREAS), areas  # the registry: empty again


def assert_refused(run_text: str, holder: Holder, env: str, owner: str) -> None:
    # Refused while the holder still holds (it holds until the test ends): the run did not
    # wait for it, which a timing bound would only guess at on a busy machine.
    assert holder.process.poll() is None
    assert (
        f"environment '{env}' is locked by {owner} (pid {holder.pid} on {socket.gethostname()}) since "
        in run_text
    ), run_text
    assert f"lock id {holder.ids[env]}" in run_text
    assert f"releasekit unlock {env} --id {holder.ids[env]}" in run_text


@pytest.mark.slow
def test_a_held_lease_refuses_deploy_promote_and_rollback_then_unlock_clears_a_dead_one(
    tmp_path: Path, bucket: Bucket
) -> None:
    repo = shared_warehouse_repo(tmp_path, "repo")
    ok_s3(repo, bucket, "deploy", "dev")
    ok_s3(repo, bucket, "promote", "staging")
    owner = "deploy by ci-runner-7"

    with lease_holder(bucket, owner, "dev", "staging") as holder:
        for args, env in (
            (("deploy", "dev"), "dev"),
            (("rollback", "dev"), "dev"),
            (("promote", "staging"), "staging"),
        ):
            run = run_s3(repo, bucket, *args)
            assert run.code == 4, run.text()
            assert_refused(said(run), holder, env, owner)

        # A wrong id is refused and the lease stays; a live holder's lease cannot be cleared.
        lease = _holder_of(bucket, "dev")
        run = run_s3(repo, bucket, "unlock", "dev", "--id", "ffffffffffff")
        assert run.code == 2 and f"held under id '{holder.ids['dev']}'" in said(run), run.text()
        run = run_s3(repo, bucket, "unlock", "dev", "--id", holder.ids["dev"])
        assert run.code == 4 and f"live process: pid {holder.pid}" in said(run), run.text()
        assert _holder_of(bucket, "dev") == lease  # renewals rewrite it; the holder stays

        holder.kill()  # the runner dies; its leases stay in the bucket until cleared or expired
        assert has_key(bucket, "locks/dev.json") and has_key(bucket, "locks/staging.json")
        for env in ("dev", "staging"):
            out = ok_s3(repo, bucket, "unlock", env, "--id", holder.ids[env])
            assert f"{env} is unlocked: cleared lock {holder.ids[env]} of {owner} (pid {holder.pid}" in out
        assert not [key for key in stored(bucket) if key.startswith("locks/")]

    assert "Nothing changed: dev stays on release 1" in ok_s3(repo, bucket, "deploy", "dev")
    assert "up-to-date" in ok_s3(repo, bucket, "promote", "staging")


TTL = 10  # seconds: short, yet long enough for the checks made before it runs out


def _holder_of(bucket: Bucket, env: str) -> tuple[str, str, int]:
    lease = json.loads(bucket.read(f"locks/{env}.json"))
    return lease["id"], lease["owner"], lease["pid"]


@pytest.mark.slow
def test_a_killed_deploys_lease_expires_and_the_next_deploy_takes_over(
    tmp_path: Path, bucket: Bucket
) -> None:
    # The state named in releasekit.yml, with the shortest time to live it allows.
    config = f"version: 1\nstate:\n  url: {bucket.url}\n  lock_ttl_seconds: {TTL}\n"
    repo = shared_warehouse_repo(tmp_path, "repo", releasekit_yml=config)
    ok_s3(repo, bucket, "deploy", "dev", state_url=False)
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    commit(repo, "revenue v2")

    # A deploy killed (as a runner is) while it holds dev's lease.
    with (tmp_path / "killed.log").open("w") as log:
        killed = launch_s3(repo, bucket, "deploy", "dev", out=log, state_url=False)
        try:
            deadline = time.monotonic() + 60
            while not has_key(bucket, "locks/dev.json"):
                assert killed.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "the deploy never took dev's lease"
                time.sleep(0.02)
        finally:
            os.killpg(killed.pid, signal.SIGKILL)  # no handler, no cleanup: the lease stays
            killed.wait()
    lease = json.loads(bucket.read("locks/dev.json"))
    assert (lease["pid"], lease["ttl_seconds"]) == (killed.pid, TTL), lease

    # Until it expires, the dead run's lease refuses others (asked of the store directly: a
    # whole CLI start can outlast a short lease on a loaded machine).
    with (
        pytest.raises(LockedError, match=f"pid {killed.pid} on"),
        bucket.store().lock("dev", owner="t", timeout=0),
    ):
        pass

    deadline = time.monotonic() + 30
    while (age := bucket.store().lease_age("dev")) is not None and age[0] <= age[1] + 1:
        assert time.monotonic() < deadline, f"dev's lease never expired: {age}"
        time.sleep(0.25)
    out = ok_s3(repo, bucket, "deploy", "dev", state_url=False)  # no unlock: it takes the lease over
    assert "dev is now release 2" in out, out
    assert not has_key(bucket, "locks/dev.json")
    entries = bucket.store().entries("dev")
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert (entries[-1].release_id, entries[-1].outcome) == (2, "succeeded")
    assert local_state(repo) <= LOCAL_ONLY


@pytest.mark.slow
def test_a_fresh_clone_refuses_to_promote_over_a_diverged_remote_branch(
    tmp_path: Path, bucket: Bucket
) -> None:
    origin = shared_warehouse_repo(tmp_path, "origin")  # the hosted repository jobs clone
    ok_s3(origin, bucket, "deploy", "dev")
    ok_s3(origin, bucket, "promote", "staging")
    hotfix = tmp_path / "hotfix"  # someone commits to staging directly and pushes
    git(tmp_path, "clone", "-q", "--branch", "staging", str(origin), str(hotfix))
    write_files(hotfix, {"HOTFIX.md": "hotfix\n"})
    commit(hotfix, "hotfix on staging")
    git(hotfix, "push", "-q", "origin", "staging")
    write_files(origin, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- v2\n"})
    commit(origin, "revenue v2")
    ok_s3(origin, bucket, "deploy", "dev")
    served = views(tmp_path, "staging")

    job = tmp_path / "job"  # a CI runner's fresh clone: staging exists only as origin/staging
    git(tmp_path, "clone", "-q", str(origin), str(job))
    run = run_s3(job, bucket, "promote", "staging")

    assert run.code == 1, run.text()  # README: "a conflict or a diverged branch changes nothing"
    assert [e.release_id for e in bucket.store().entries("staging")] == [1, 1]
    assert views(tmp_path, "staging") == served
