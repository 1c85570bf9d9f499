"""`state migrate` through its core: every document copied between a folder and a bucket on
moto's server, verified, the source never changed; refusals copy nothing; a rerun finishes
an interrupted copy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from releasekit.config.model import StateLocation
from releasekit.errors import ConfigError, NotFoundError, StateError
from releasekit.state.base import StateStore
from releasekit.state.local import LocalStore
from releasekit.state.migrate import MigrationResult, copy_order, migrate, switch_line
from releasekit.state.remote import ObjectStateStore
from tests.support.s3 import Bucket
from tests.support.state_factories import CONTENT, SHA, fill


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under a local state folder, locks included."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def same_state(left: StateStore, right: StateStore) -> None:
    assert left.environments() == right.environments()
    for env in left.environments():
        assert left.entries(env) == right.entries(env)
    assert left.branches() == right.branches()
    assert left.checks(SHA) == right.checks(SHA)
    assert left.checks_with_content(CONTENT) == right.checks_with_content(CONTENT) != []
    assert left.get_artifact("graph-abc") == right.get_artifact("graph-abc")


def run(source: StateStore, destination: StateStore) -> MigrationResult:
    return migrate(source, destination, "state: test")


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / ".releasekit")
    fill(store)
    return store


def test_a_folder_moves_to_a_bucket_whole_and_verified_and_stays_as_it_was(
    local: LocalStore, bucket: Bucket
) -> None:
    with local.lock("dev", owner="a run that finished"):
        pass  # leaves locks/dev.lock, which is not state: it must not be copied
    before = snapshot(local.root)

    result = run(local, bucket.store())

    keys = local.object_keys()
    assert len(keys) == 12 + 1 + 1 + 2 + 1 + 1  # ledgers, registry, checks, by content, artifact
    assert sorted(result.copied) == keys and result.skipped == () and result.verified == len(keys)
    assert result.bytes_copied == sum(len(local.read_object(key) or b"") for key in keys)
    assert bucket.keys() == sorted(f"{bucket.prefix}/{key}" for key in keys)
    assert all(bucket.read(key) == local.read_object(key) for key in keys)
    same_state(local, bucket.store())
    assert snapshot(local.root) == before  # the source is only read


def test_a_bucket_moves_to_a_folder(bucket: Bucket, tmp_path: Path) -> None:
    source = bucket.store()
    fill(source)
    keys_before = bucket.keys()

    destination = LocalStore(tmp_path / "restored")
    result = run(source, destination)

    assert sorted(result.copied) == source.object_keys() == destination.object_keys()
    same_state(source, destination)
    assert bucket.keys() == keys_before


def test_a_rerun_after_an_interrupted_copy_finishes_it(local: LocalStore, bucket: Bucket) -> None:
    keys = sorted(local.object_keys(), key=copy_order)
    destination = bucket.store()
    for key in keys[:7]:  # what a migrate killed part way had created
        assert destination.create_object(key, local.read_object(key) or b"")

    result = run(local, destination)

    assert result.skipped == tuple(keys[:7])
    assert result.copied == tuple(keys[7:])
    assert result.verified == len(keys)
    same_state(local, bucket.store())
    again = run(local, bucket.store())  # and once complete, a rerun copies nothing
    assert again.copied == () and len(again.skipped) == len(keys)


class Recording(LocalStore):
    """A destination that remembers the order documents were created in."""

    created: list[str]

    def create_object(self, key: str, data: bytes) -> bool:
        self.created.append(key)
        return super().create_object(key, data)


def test_ledger_and_check_folders_are_copied_in_sequence_order(local: LocalStore, tmp_path: Path) -> None:
    destination = Recording(tmp_path / "copy")
    destination.created = []
    run(local, destination)

    dev = [key for key in destination.created if key.startswith("ledger/dev/")]
    assert dev == [f"ledger/dev/{seq:08d}.json" for seq in range(1, 13)]
    checks = [key for key in destination.created if key.startswith("checks/")]
    assert checks == [f"checks/{SHA}/00000001.json", f"checks/{SHA}/00000002.json"]
    assert copy_order("ledger/dev/100000000.json") > copy_order("ledger/dev/99999999.json")


def test_a_different_document_at_the_destination_is_refused_and_nothing_copied(
    local: LocalStore, bucket: Bucket
) -> None:
    bucket.write("ledger/dev/00000003.json", b'{"format": "someone else\'s"}\n')

    with pytest.raises(StateError) as caught:
        run(local, bucket.store())

    assert f"{bucket.url}/ledger/dev/00000003.json" in caught.value.message
    assert "nothing was copied" in caught.value.message
    assert bucket.keys() == [f"{bucket.prefix}/ledger/dev/00000003.json"]


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_held_lock_at_the_source_is_refused_naming_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source: StateStore
    if kind == "local":
        source = LocalStore(tmp_path / ".releasekit")
        destination: StateStore = LocalStore(tmp_path / "copy")
    else:
        bucket: Bucket = request.getfixturevalue("bucket")
        source = bucket.store()
        destination = LocalStore(tmp_path / "copy")
    fill(source)

    with source.lock("dev", owner="deploy dev by ci-runner-7") as held, pytest.raises(StateError) as caught:
        run(source, destination)

    assert caught.value.exit_code == 2
    assert "deploy dev by ci-runner-7" in caught.value.message
    assert f"lock id {held.id}" in caught.value.message
    assert "nothing was copied" in caught.value.message
    assert destination.object_keys() == []


def test_a_corrupt_source_document_is_refused_and_nothing_copied(local: LocalStore, tmp_path: Path) -> None:
    (local.root / "ledger" / "dev" / "00000004.json").write_bytes(b"{not json")
    destination = LocalStore(tmp_path / "copy")

    with pytest.raises(StateError) as caught:
        run(local, destination)

    assert str(local.root / "ledger" / "dev" / "00000004.json") in caught.value.message
    assert destination.object_keys() == []


def test_the_same_store_and_an_empty_source_are_refused(local: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        run(local, LocalStore(local.root))
    with pytest.raises(NotFoundError):
        run(LocalStore(tmp_path / "empty"), local)


def test_the_switch_line_is_yaml_releasekit_reads(tmp_path: Path) -> None:
    plain = StateLocation()
    assert switch_line("s3://b/team/state", plain, tmp_path) == "state: s3://b/team/state"
    minio = dataclasses.replace(
        plain, region="eu-west-1", endpoint_url="http://minio:9000", lock_ttl_seconds=30
    )
    line = switch_line("s3://b/p", minio, tmp_path)
    assert yaml.safe_load(line) == {
        "state": {
            "url": "s3://b/p",
            "region": "eu-west-1",
            "endpoint_url": "http://minio:9000",
            "lock_ttl_seconds": 30,
        }
    }
    assert switch_line("back/here", minio, tmp_path) == "state: {path: back/here}"
    assert yaml.safe_load(switch_line("/srv/rk state", minio, tmp_path)) == {
        "state": {"path": "/srv/rk state"}
    }


def test_the_copy_reads_back_through_the_other_stores_own_reader(local: LocalStore, bucket: Bucket) -> None:
    """Not only bytes: the bucket's own store class reads every ledger the folder held."""
    run(local, bucket.store())
    fresh = ObjectStateStore(bucket.objects())
    assert [entry.seq for entry in fresh.entries("dev")] == list(range(1, 13))
    assert fresh.entries("feature/x")[0] == local.entries("feature/x")[0]
