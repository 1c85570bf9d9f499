"""What every StateStore promises about check records: append-only per commit, every field
round-trips, a corrupt record is an error that names it, and concurrent appends lose nothing."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from releasekit.errors import StateError
from releasekit.state.base import CheckRecord, StateStore
from releasekit.state.local import LocalStore

SHA = "0123456789abcdef0123456789abcdef01234567"


def make_record(**changes: object) -> CheckRecord:
    record = CheckRecord(
        git_sha=SHA,
        env="feature/x",
        base="dev",
        release_id=3,
        passed=False,
        verdict="FAILED: lint",
        statuses={"lint": "failed", "build": "passed", "logic": "skipped", "diff": "passed"},
        who="Ada <ada@example.com>",
        at="2026-11-21T12:00:00+00:00",
        report={"version": 1, "checks": [{"name": "lint", "findings": [{"line": 3}]}]},
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def test_no_checks_for_an_unknown_commit(store: StateStore) -> None:
    assert store.checks(SHA) == []


def test_records_round_trip_and_get_contiguous_seqs(store: StateStore) -> None:
    first = store.record_check(make_record(seq=42))
    second = store.record_check(make_record(passed=True, verdict="PASSED", release_id=None))
    assert (first.seq, second.seq) == (1, 2)
    assert store.checks(SHA) == [first, second]
    assert first == replace(make_record(), seq=1)
    assert store.checks("f" * 40) == []


def test_dirty_and_odd_shas_stay_apart(store: StateStore) -> None:
    store.record_check(make_record())
    store.record_check(make_record(git_sha=f"{SHA}-dirty"))
    assert [r.git_sha for r in store.checks(f"{SHA}-dirty")] == [f"{SHA}-dirty"]
    assert len(store.checks(SHA)) == 1


def test_concurrent_records_are_all_kept(store: StateStore) -> None:
    def record(n: int) -> None:
        for i in range(5):
            store.record_check(make_record(verdict=f"{n}-{i}"))

    threads = [threading.Thread(target=record, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = store.checks(SHA)
    assert [r.seq for r in records] == list(range(1, 31))
    assert sorted(r.verdict for r in records) == sorted(f"{n}-{i}" for n in range(6) for i in range(5))


def test_a_corrupt_record_is_named_and_left_alone(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / ".releasekit")
    store.record_check(make_record())
    [path] = (tmp_path / ".releasekit" / "checks").glob("*/00000001.json")
    path.write_text('{"format": "releasekit.check/9"}')
    with pytest.raises(StateError, match="not a releasekit check record") as raised:
        store.checks(SHA)
    assert str(path) in str(raised.value)
    assert path.read_text() == '{"format": "releasekit.check/9"}'


def test_artifacts_are_written_once_and_read_back(store: StateStore) -> None:
    assert store.get_artifact("graph-abc.json") is None
    store.put_artifact("graph-abc.json", b"first")
    store.put_artifact("graph-abc.json", b"second")  # same name: the first stays
    store.put_artifact("graph/odd name.json", b"other")
    assert store.get_artifact("graph-abc.json") == b"first"
    assert store.get_artifact("graph/odd name.json") == b"other"


TREE = "89abcdef0123456789abcdef0123456789abcdef"


def test_checks_are_found_by_the_content_they_verified(store: StateStore) -> None:
    assert store.checks_with_content(TREE) == []
    head = store.record_check(
        make_record(content=TREE, ran=("lint", "build", "logic", "diff"), skipped={}, passed=True)
    )
    other = store.record_check(
        make_record(git_sha="a" * 40, content=TREE, ran=("logic",), skipped={"lint": "only"})
    )
    store.record_check(make_record(git_sha="b" * 40, content="c" * 40))
    store.record_check(make_record(git_sha=f"{SHA}-dirty", content=None))  # a dirty tree: by sha only

    found = store.checks_with_content(TREE)

    assert [(r.git_sha, r.ran, r.skipped, r.content) for r in found] == [
        (SHA, head.ran, {}, TREE),
        ("a" * 40, ("logic",), {"lint": "only"}, TREE),
    ]
    assert found[0].full and not found[1].full
    assert store.checks(SHA) == [head] and store.checks("a" * 40) == [other]
    assert [r.git_sha for r in store.checks_with_content("c" * 40)] == ["b" * 40]
    assert store.checks_with_content("d" * 40) == []


def test_a_record_written_before_coverage_was_recorded_is_no_full_check(store: StateStore) -> None:
    # What an older releasekit wrote: no ran, skipped or content fields.
    old = make_record(statuses={"lint": "passed", "build": "passed", "logic": "skipped", "diff": "passed"})
    store.record_check(old)
    key = next(key for key in store.object_keys() if key.startswith("checks/"))
    document = json.loads(store.read_object(key) or b"")
    for field in ("ran", "skipped", "content"):
        del document[field]
    store.create_object(key.replace("00000001", "00000002"), json.dumps({**document, "seq": 2}).encode())

    [_, legacy] = store.checks(SHA)

    assert set(legacy.ran) == {"lint", "build", "diff"} and legacy.skipped == {"logic": "unknown"}
    assert not legacy.full and legacy.content is None
