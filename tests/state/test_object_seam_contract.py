"""What the object-store seam promises, on each implementation: a local folder and a bucket
on moto's server over HTTP. Every document the state store keeps is written through these
five operations, so their conditional semantics are what keeps a ledger whole."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from releasekit.errors import StateError
from releasekit.state.folder import FolderObjects
from releasekit.state.objects import ObjectStore
from tests.support.s3 import Bucket


@pytest.fixture(params=["folder", "s3"])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "folder":
        return FolderObjects(tmp_path / "state")
    bucket: Bucket = request.getfixturevalue("bucket")
    return bucket.objects()


def test_create_writes_only_what_is_absent(objects: ObjectStore) -> None:
    tag = objects.create("ledger/prod/00000001.json", b"first")
    assert tag is not None
    assert objects.create("ledger/prod/00000001.json", b"second") is None
    stored = objects.get("ledger/prod/00000001.json")
    assert stored is not None and (stored.data, stored.etag) == (b"first", tag)
    assert objects.exists("ledger/prod/00000001.json")


def test_a_missing_key_reads_as_none(objects: ObjectStore) -> None:
    assert objects.get("registry/nobody.json") is None
    assert not objects.exists("registry/nobody.json")
    assert objects.keys("registry/") == []


def test_replace_swaps_only_the_version_it_was_given(objects: ObjectStore) -> None:
    first = objects.create("registry/x.json", b"one")
    assert first is not None
    second = objects.replace("registry/x.json", b"two", first)
    assert second is not None and second != first
    assert objects.replace("registry/x.json", b"stale", first) is None  # a lost race, never an overwrite
    stored = objects.get("registry/x.json")
    assert stored is not None and (stored.data, stored.etag) == (b"two", second)
    assert objects.replace("registry/gone.json", b"new", second) is None  # nothing to swap


def test_delete_honours_the_version_tag(objects: ObjectStore) -> None:
    first = objects.create("registry/x.json", b"one")
    assert first is not None
    second = objects.replace("registry/x.json", b"two", first)
    assert second is not None
    assert not objects.delete("registry/x.json", first)
    assert objects.get("registry/x.json") is not None
    assert objects.delete("registry/x.json", second)
    assert objects.get("registry/x.json") is None
    assert objects.delete("registry/x.json")  # a missing key: not an error


def test_keys_list_a_prefix_sorted_and_nothing_else(objects: ObjectStore) -> None:
    for key in ("ledger/prod/00000002.json", "ledger/prod/00000001.json", "ledger/dev/00000001.json"):
        assert objects.create(key, b"{}") is not None
    assert objects.create("registry/prod.json", b"{}") is not None
    assert objects.keys("ledger/prod/") == ["ledger/prod/00000001.json", "ledger/prod/00000002.json"]
    assert objects.keys("ledger/") == [
        "ledger/dev/00000001.json",
        "ledger/prod/00000001.json",
        "ledger/prod/00000002.json",
    ]
    assert objects.keys("registry/") == ["registry/prod.json"]


def test_the_same_bytes_have_the_same_tag_after_a_reread(objects: ObjectStore) -> None:
    tag = objects.create("artifacts/graph", b"\x00\x01 graph bytes")
    stored = objects.get("artifacts/graph")
    assert stored is not None and stored.etag == tag
    assert stored.modified.tzinfo is not None  # the store's clock, comparable with now()
    assert abs((objects.now() - stored.modified).total_seconds()) < 3600


def _race(write: Callable[[bytes], str | None]) -> list[int]:
    """Eight threads write at once; which of them the store accepted."""
    won: list[int] = []
    start = threading.Barrier(8)

    def racer(n: int) -> None:
        start.wait()
        if write(f"writer {n}".encode()) is not None:
            won.append(n)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_racing_creates_of_one_key_have_one_winner(objects: ObjectStore) -> None:
    [winner] = _race(lambda data: objects.create("ledger/prod/00000001.json", data))
    stored = objects.get("ledger/prod/00000001.json")
    assert stored is not None and stored.data == f"writer {winner}".encode()


def test_racing_swaps_of_one_version_have_one_winner(objects: ObjectStore) -> None:
    first = objects.create("registry/x.json", b"start")
    assert first is not None
    [winner] = _race(lambda data: objects.replace("registry/x.json", data, first))
    stored = objects.get("registry/x.json")
    assert stored is not None and stored.data == f"writer {winner}".encode()


def test_a_folder_refuses_keys_that_leave_it(tmp_path: Path) -> None:
    objects = FolderObjects(tmp_path / "state")
    for key in ("../outside.json", "ledger/../../outside.json", "/etc/passwd"):
        with pytest.raises(StateError, match="not a state document key"):
            objects.create(key, b"x")
    assert not (tmp_path / "outside.json").exists()


def test_a_folder_lists_neither_temp_files_nor_its_lock_files(tmp_path: Path) -> None:
    objects = FolderObjects(tmp_path / "state")
    tag = objects.create("registry/x.json", b"one")
    assert tag is not None and objects.replace("registry/x.json", b"two", tag) is not None
    (tmp_path / "state" / "registry" / ".tmp-1-abcdef012345-x.json").write_bytes(b"half")
    (tmp_path / "state" / "registry" / "append.lock").write_bytes(b"")
    assert objects.keys("registry/") == ["registry/x.json"]
