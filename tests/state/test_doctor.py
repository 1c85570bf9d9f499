"""`releasekit doctor` through its core, on a folder and on a bucket on moto's server: every
check passes on a healthy store and changes nothing; a corrupt or unknown-version document,
a gap in a ledger, an unreadable lease are named by their URL or path and left as they are;
a store that ignores conditional writes, a missing bucket and an unreachable endpoint fail
with a message that names the fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from releasekit.config.model import ProjectConfig, StateLocation
from releasekit.state.base import LockInfo
from releasekit.state.codec import holder_to_document
from releasekit.state.doctor import Check, DoctorReport, diagnose, probe
from releasekit.state.local import LocalStore
from releasekit.state.remote import LEASE_FORMAT, ObjectStateStore
from releasekit.state.s3 import S3Objects
from tests.support.s3 import REGION, Bucket
from tests.support.state_factories import fill


def doctor(tmp_path: Path, location: StateLocation) -> DoctorReport:
    config = ProjectConfig(
        root=tmp_path,
        dbt_project_dir=tmp_path,
        profiles_dir=None,
        profile=None,
        state_path=tmp_path / ".releasekit",
        state=location,
    )
    return diagnose(lambda: config)


def checks(report: DoctorReport) -> dict[str, Check]:
    return {check.name: check for check in report.checks}


def local_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def bucket_objects(bucket: Bucket) -> dict[str, bytes]:
    stored = bucket.keys()  # every key in the bucket, a probe left behind too
    return {key: bucket.read(key.removeprefix(f"{bucket.prefix}/")) for key in stored}


def test_a_healthy_folder_passes_every_check_and_is_left_as_it_was(tmp_path: Path) -> None:
    fill(LocalStore(tmp_path / ".releasekit"))
    before = local_files(tmp_path / ".releasekit")

    report = doctor(tmp_path, StateLocation())

    assert report.passed, report
    assert list(checks(report)) == [
        "config",
        "state store",
        "conditional create",
        "file lock",
        "delete",
        "documents",
        "locks",
    ]
    assert "ledger entries: 13" in checks(report)["documents"].detail
    assert local_files(tmp_path / ".releasekit") == before  # the probe is gone, nothing changed


def test_a_healthy_bucket_passes_every_check_and_is_left_as_it_was(bucket: Bucket, tmp_path: Path) -> None:
    fill(bucket.store())
    before = bucket_objects(bucket)

    report = doctor(tmp_path, StateLocation(url=bucket.url))

    assert report.passed, report
    assert report.where == bucket.url
    assert list(checks(report)) == [
        "config",
        "state store",
        "conditional create",
        "compare-and-swap",
        "delete",
        "documents",
        "locks",
    ]
    assert "refused" in checks(report)["conditional create"].detail
    assert "stale ETag" in checks(report)["compare-and-swap"].detail
    assert bucket_objects(bucket) == before


def test_corrupt_and_unknown_version_ledger_objects_are_named_and_left_alone(
    bucket: Bucket, tmp_path: Path
) -> None:
    fill(bucket.store())
    newer = json.loads(bucket.read("ledger/dev/00000005.json"))
    newer["format"] = "releasekit.ledger/9"
    bucket.write("ledger/dev/00000002.json", b'{"format": "releasekit.ledger/1", "env": ')
    bucket.write("ledger/dev/00000005.json", json.dumps(newer).encode())
    before = bucket_objects(bucket)

    report = doctor(tmp_path, StateLocation(url=bucket.url))

    assert not report.passed
    documents = checks(report)["documents"]
    assert not documents.passed
    said = "\n".join(documents.items)
    assert f"{bucket.url}/ledger/dev/00000002.json: not valid JSON" in said
    assert (
        f"{bucket.url}/ledger/dev/00000005.json: ledger format 'releasekit.ledger/9' is not one this "
        "releasekit reads" in said
    )
    assert len(documents.items) == 2
    assert "upgrade" in documents.hint
    assert bucket_objects(bucket) == before


def test_every_kind_of_bad_local_document_is_named(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    fill(LocalStore(root))
    (root / "ledger" / "dev" / "00000003.json").unlink()
    (root / "registry" / "feature%2Fx.json").write_text('{"format": "releasekit.registry/7"}')
    (root / "checks" / ("c" * 40) / "00000002.json").write_text("[]")
    (root / "locks").mkdir()
    (root / "locks" / "dev.holder.json").write_text('{"format": "releasekit.lock-holder/1"}')

    documents = checks(doctor(tmp_path, StateLocation()))["documents"]

    said = "\n".join(documents.items)
    assert f"{root}/ledger/dev: entry 00000003.json is missing" in said
    assert f"{root}/registry/feature%2Fx.json: not a releasekit registry record" in said
    assert f"{root}/checks/{'c' * 40}/00000002.json: not a releasekit check record" in said
    assert f"{root}/locks/dev.holder.json" in said
    assert len(documents.items) == 4


def lease(env: str, ttl: float, pid: int = 4242) -> bytes:
    info = LockInfo(
        env, "deploy dev by ci-runner-7", "runner-host", pid, "2024-05-01T12:00:00+00:00", "abc123abc123"
    )
    document = {**holder_to_document(info), "lease": LEASE_FORMAT, "ttl_seconds": ttl}
    return json.dumps({**document, "renewed_at": "2024-05-01T12:00:00+00:00"}).encode()


def test_locks_held_and_expired_are_listed_and_an_unreadable_lease_is_named(
    bucket: Bucket, tmp_path: Path
) -> None:
    fill(bucket.store())
    bucket.write("locks/prod.json", lease("prod", 0.5))
    bucket.write("locks/qa.json", b'{"lease": "releasekit.lease/1", "ttl_seconds": "soon"}')
    time.sleep(2)  # the prod lease (half a second to live) expires, by the store's clock
    with bucket.store().lock("dev", owner="deploy dev by alice") as held:
        report = doctor(tmp_path, StateLocation(url=bucket.url))

    locks = checks(report)["locks"]
    assert any(
        item.startswith(f"held: dev by deploy dev by alice (pid {os.getpid()}") for item in locks.items
    )
    assert any(f"lock id {held.id}" in item for item in locks.items)
    expired = next(item for item in locks.items if item.startswith("left behind: prod"))
    assert "releasekit unlock prod --id abc123abc123" in expired
    assert checks(report)["documents"].items == (
        f"{bucket.url}/locks/qa.json: ttl_seconds: should be a positive number",
    )


def test_a_lock_left_by_a_dead_process_is_listed_as_left_behind(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    fill(LocalStore(root))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    info = LockInfo(
        "dev",
        "deploy dev",
        socket.gethostname(),
        int(dead.stdout),
        "2024-05-01T12:00:00+00:00",
        "0badc0ffee00",
    )
    (root / "locks").mkdir()
    (root / "locks" / "dev.holder.json").write_text(json.dumps(holder_to_document(info)))

    report = doctor(tmp_path, StateLocation())

    assert report.passed  # a lock record is listed, not a failure
    (item,) = checks(report)["locks"].items
    assert item.startswith("left behind: dev by deploy dev")
    assert "releasekit unlock dev --id 0badc0ffee00" in item


class IgnoresIfNoneMatch(S3Objects):
    """A store that overwrites where it should refuse an existing key."""

    def create(self, key: str, data: bytes) -> str | None:
        current = self.get(key)
        return super().create(key, data) if current is None else self.replace(key, data, current.etag)


class IgnoresIfMatch(S3Objects):
    """A store that replaces whatever the ETag it is given."""

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        current = self.get(key)
        return None if current is None else super().replace(key, data, current.etag)


@pytest.mark.parametrize(
    ("objects", "failing"),
    [(IgnoresIfNoneMatch, "conditional create"), (IgnoresIfMatch, "compare-and-swap")],
)
def test_a_store_without_conditional_writes_is_named_unsafe(
    bucket: Bucket, objects: type[S3Objects], failing: str
) -> None:
    store = ObjectStateStore(objects(bucket.url, region=REGION, endpoint_url=bucket.endpoint))

    found = probe(store)

    assert found[-1].name == failing and not found[-1].passed
    assert (
        "does not honour conditional writes, so releasekit cannot keep the ledger safe on it"
        in found[-1].detail
    )
    assert "If-None-Match and If-Match" in found[-1].hint
    assert bucket.keys() == []  # the probe was removed all the same


def test_a_bucket_that_does_not_exist_fails_naming_the_fix(bucket: Bucket, tmp_path: Path) -> None:
    missing = f"s3://rk-missing-{uuid.uuid4().hex[:12]}/team"

    report = doctor(tmp_path, StateLocation(url=missing))

    assert not report.passed
    assert [check.name for check in report.checks] == ["config", "state store"]
    failed = report.checks[-1]
    assert "NoSuchBucket" in failed.detail and missing.removeprefix("s3://").split("/")[0] in failed.detail
    assert "create the bucket" in failed.hint


def test_an_unreachable_endpoint_fails_naming_it(bucket: Bucket, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    report = doctor(tmp_path, StateLocation(url=bucket.url, endpoint_url=f"http://127.0.0.1:{port}"))

    assert not report.passed
    failed = report.checks[-1]
    assert failed.name == "state store"
    assert f"could not reach http://127.0.0.1:{port}" in failed.detail
    assert "state.endpoint_url" in failed.hint
