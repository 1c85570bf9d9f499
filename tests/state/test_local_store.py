"""The local folder store: its layout, its refusals, and real processes racing and dying."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from releasekit.errors import LockedError, LockMismatchError, NotFoundError, StateError
from releasekit.state.local import LocalStore, _write_new
from tests.support.state_factories import make_entry

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
WORKER = HERE / "_state_workers.py"


def spawn(*args: str, stdout: int | None = None) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(HERE)])}
    return subprocess.Popen([sys.executable, str(WORKER), *args], env=environ, stdout=stdout, text=True)


@contextmanager
def lock_holder(root: Path, env: str, owner: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A child process holding `env`'s lock, and the id of its hold."""
    child = spawn("hold-lock", str(root), env, owner, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        said, lock_id = child.stdout.readline().split()
        assert said == "locked"
        yield child, lock_id
    finally:
        child.kill()
        child.wait()


def kill_hard(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def wait_for_entries(folder: Path, count: int, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    while len(entry_files(folder) if folder.exists() else []) < count:
        assert child.poll() is None, "the appending child died on its own"
        assert time.monotonic() < deadline, "the appending child made no progress"
        time.sleep(0.002)


def entry_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if re.fullmatch(r"\d{8}\.json", name))


def test_layout_is_one_readable_file_per_entry(local_store: LocalStore) -> None:
    local_store.append(make_entry(env="feature/x"))
    local_store.append(make_entry(env="feature/x", release_id=2))
    folder = local_store.root / "ledger" / "feature%2Fx"
    assert entry_files(folder) == ["00000001.json", "00000002.json"]
    document = json.loads((folder / "00000002.json").read_text())
    assert (document["format"], document["env"], document["seq"]) == (
        "releasekit.ledger/1",
        "feature/x",
        2,
    )
    assert local_store.describe() == str(local_store.root)


def test_appends_leave_earlier_files_byte_for_byte(local_store: LocalStore) -> None:
    local_store.append(make_entry())
    first = local_store.root / "ledger" / "prod" / "00000001.json"
    before = first.read_bytes()
    for n in range(2, 6):
        local_store.append(make_entry(release_id=n))
    assert first.read_bytes() == before


def test_creating_an_entry_never_overwrites(tmp_path: Path) -> None:
    # The last line of defence if two writers ever raced past the lock.
    final = tmp_path / "00000001.json"
    final.write_bytes(b"the original")
    with pytest.raises(StateError, match="refusing to overwrite"):
        _write_new(final, b"an impostor")
    assert final.read_bytes() == b"the original"
    assert os.listdir(tmp_path) == ["00000001.json"]


def test_corrupt_entry_names_the_file(local_store: LocalStore) -> None:
    local_store.append(make_entry())
    local_store.append(make_entry(release_id=2))
    path = local_store.root / "ledger" / "prod" / "00000002.json"
    path.write_text('{"format": "releasekit.ledger/1", "env": "pro')
    with pytest.raises(StateError, match=re.escape(str(path))):
        local_store.entries("prod")


def test_unknown_format_names_the_file(local_store: LocalStore) -> None:
    local_store.append(make_entry())
    path = local_store.root / "ledger" / "prod" / "00000001.json"
    path.write_text(path.read_text().replace("releasekit.ledger/1", "releasekit.ledger/9"))
    with pytest.raises(StateError, match=re.escape(str(path))):
        local_store.entries("prod")
    with pytest.raises(StateError, match=re.escape(str(path))):
        local_store.environments()


def test_gap_names_the_folder_and_blocks_appends(local_store: LocalStore) -> None:
    for n in range(1, 4):
        local_store.append(make_entry(release_id=n))
    folder = local_store.root / "ledger" / "prod"
    (folder / "00000002.json").unlink()
    with pytest.raises(StateError, match=re.escape(f"{folder}: entry 00000002.json is missing")):
        local_store.entries("prod")
    with pytest.raises(StateError, match="is missing"):
        local_store.append(make_entry(release_id=4))
    assert entry_files(folder) == ["00000001.json", "00000003.json"]


def test_two_spellings_of_one_seq_are_refused(local_store: LocalStore) -> None:
    local_store.append(make_entry())
    folder = local_store.root / "ledger" / "prod"
    (folder / "000000001.json").write_bytes((folder / "00000001.json").read_bytes())
    with pytest.raises(StateError, match="not a ledger entry name"):
        local_store.entries("prod")


def test_entry_copied_from_another_environment_is_refused(local_store: LocalStore) -> None:
    local_store.append(make_entry(env="dev"))
    target = local_store.root / "ledger" / "prod"
    target.mkdir()
    source = local_store.root / "ledger" / "dev" / "00000001.json"
    (target / "00000001.json").write_bytes(source.read_bytes())
    with pytest.raises(StateError, match="expected entry 1 of 'prod'"):
        local_store.entries("prod")
    with pytest.raises(StateError, match="holds entries of environment 'dev'"):
        local_store.environments()


def test_stray_temp_files_are_ignored_then_swept(local_store: LocalStore) -> None:
    local_store.append(make_entry())
    folder = local_store.root / "ledger" / "prod"
    stray = folder / ".tmp-999-abc-00000002.json"
    stray.write_text('{"half a')
    assert len(local_store.entries("prod")) == 1
    local_store.append(make_entry(release_id=2))
    assert not stray.exists()
    assert [entry.seq for entry in local_store.entries("prod")] == [1, 2]


def test_folder_left_by_a_killed_first_append_is_no_environment(
    local_store: LocalStore,
) -> None:
    (local_store.root / "ledger" / "prod").mkdir(parents=True)
    assert local_store.environments() == []
    assert local_store.entries("prod") == []


def test_state_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    root.write_text("not a folder")
    with pytest.raises(StateError, match="is a file"):
        LocalStore(root)


def test_state_folder_replaced_by_a_file_later_is_refused(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    store = LocalStore(root)
    root.write_text("not a folder")
    with pytest.raises(StateError, match="is a file"):
        store.entries("prod")
    with pytest.raises(StateError, match="is a file"):
        store.append(make_entry())


def test_root_folder_is_made_lazily(tmp_path: Path) -> None:
    root = tmp_path / "deep" / ".releasekit"
    store = LocalStore(root)
    assert not root.exists()
    store.append(make_entry())
    assert root.is_dir()


def test_holder_record_exists_only_while_held(local_store: LocalStore) -> None:
    holder = local_store.root / "locks" / "feature%2Fx.holder.json"
    with local_store.lock("feature/x", owner="alice") as info:
        record = json.loads(holder.read_text())
        assert (record["owner"], record["pid"], record["since"]) == ("alice", info.pid, info.since)
        assert (record["host"], record["id"]) == (info.host, info.id)
    assert not holder.exists()


def test_since_comes_from_the_clock(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, clock=lambda: datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    with store.lock("prod", owner="a") as info:
        assert info.since == "2024-05-01T12:00:00+00:00"


def test_many_processes_appending_lose_nothing(tmp_path: Path) -> None:
    root, go = tmp_path / ".releasekit", tmp_path / "go"
    children = [spawn("append-many", str(root), "prod", "25", str(go)) for _ in range(8)]
    time.sleep(0.3)  # let them all start and wait on the signal
    go.touch()
    assert [child.wait(timeout=60) for child in children] == [0] * 8
    entries = LocalStore(root).entries("prod")
    assert [entry.seq for entry in entries] == list(range(1, 201))
    notes = [entry.note for entry in entries]
    assert len(set(notes)) == 200
    for child in children:
        mine = [note for note in notes if note.startswith(f"{child.pid}:")]
        assert mine == [f"{child.pid}:{n}" for n in range(25)]  # all there, in order


def test_kill_9_mid_append_leaves_a_clean_ledger(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    store = LocalStore(root)
    folder = root / "ledger" / "prod"
    chance = random.Random(os.getpid())
    for _ in range(4):
        before = len(store.entries("prod"))
        child = spawn("append-forever", str(root), "prod")
        wait_for_entries(folder, before + 5, child)
        time.sleep(chance.uniform(0, 0.05))
        kill_hard(child)
        entries = store.entries("prod")
        assert [entry.seq for entry in entries] == list(range(1, len(entries) + 1))
        assert len(entries) >= before + 5
    survivor = store.append(make_entry(note="after the crashes"))
    assert store.entries("prod")[-1] == survivor
    assert not [name for name in os.listdir(folder) if name.startswith(".tmp-")]


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    with lock_holder(root, "prod", "deploy prod by ci") as (holder, lock_id):
        started = time.monotonic()
        with (
            pytest.raises(LockedError) as raised,
            LocalStore(root).lock("prod", owner="me", timeout=0.5),
        ):
            pass
        assert time.monotonic() - started > 0.4  # it tried for its whole timeout first
        assert holder.poll() is None  # refused while the holder holds, not after it let go
    assert f"pid {holder.pid}" in str(raised.value)
    assert "deploy prod by ci" in str(raised.value)
    assert f"lock id {lock_id}" in str(raised.value)
    assert f"releasekit unlock prod --id {lock_id}" in str(raised.value)


def test_lock_frees_itself_when_the_holder_is_killed(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    store = LocalStore(root)
    with lock_holder(root, "prod", "doomed") as (holder, _):
        with pytest.raises(LockedError), store.lock("prod", owner="me", timeout=0.1):
            pass
        kill_hard(holder)
        with store.lock("prod", owner="me", timeout=0) as info:  # free at the first try
            assert info.pid == os.getpid()


def test_next_lock_replaces_the_record_a_killed_holder_left(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    holder_file = root / "locks" / "prod.holder.json"
    with lock_holder(root, "prod", "doomed") as (holder, dead_id):
        kill_hard(holder)
    assert json.loads(holder_file.read_text())["id"] == dead_id  # SIGKILL ran no cleanup
    with LocalStore(root).lock("prod", owner="me", timeout=0) as info:
        assert info.id != dead_id
        assert json.loads(holder_file.read_text())["id"] == info.id
    assert not holder_file.exists()


def test_unlock_refuses_a_holder_that_is_alive_in_another_process(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    store = LocalStore(root)
    with lock_holder(root, "feature/x", "deploy by ci") as (holder, lock_id):
        with pytest.raises(LockedError, match=f"live process: pid {holder.pid} on host "):
            store.break_lock("feature/x", lock_id)
        with pytest.raises(LockMismatchError, match=f"held under id '{lock_id}'"):
            store.break_lock("feature/x", "ffffffffffff")
        assert holder.poll() is None
        with (
            pytest.raises(LockedError, match=f"lock id {lock_id}"),
            store.lock("feature/x", owner="me", timeout=0),
        ):
            pass


def test_unlock_clears_what_a_killed_holder_left(tmp_path: Path) -> None:
    root = tmp_path / ".releasekit"
    store = LocalStore(root)
    holder_file = root / "locks" / "feature%2Fx.holder.json"
    with lock_holder(root, "feature/x", "deploy by ci") as (holder, lock_id):
        kill_hard(holder)
    with pytest.raises(LockMismatchError):
        store.break_lock("feature/x", "ffffffffffff")
    assert holder_file.exists()
    cleared = store.break_lock("feature/x", lock_id)
    assert (cleared.env, cleared.owner, cleared.pid, cleared.id) == (
        "feature/x",
        "deploy by ci",
        holder.pid,
        lock_id,
    )
    assert not holder_file.exists()
    with pytest.raises(NotFoundError, match="not locked"):
        store.break_lock("feature/x", lock_id)
    with store.lock("feature/x", owner="me", timeout=0) as info:
        assert info.pid == os.getpid()


def test_unreadable_holder_record_is_named_by_unlock_and_replaced_by_lock(local_store: LocalStore) -> None:
    holder_file = local_store.root / "locks" / "prod.holder.json"
    holder_file.parent.mkdir(parents=True)
    holder_file.write_text('{"format": "releasekit.lock-hol')
    with pytest.raises(StateError, match=re.escape(f"{holder_file}: unreadable lock-holder record")):
        local_store.break_lock("prod", "0a1b2c3d4e5f")
    with local_store.lock("prod", owner="me", timeout=0) as info:
        assert json.loads(holder_file.read_text())["id"] == info.id


def race(tmp_path: Path, rounds: int, racers: int = 16) -> None:
    """`racers` processes try the lock of one environment at once, `rounds` times."""
    root, signals = tmp_path / ".releasekit", tmp_path / "signals"
    signals.mkdir()
    children = [spawn("race", str(root), "prod", str(rounds), str(signals)) for _ in range(racers)]
    winners = []
    try:
        for n in range(rounds):
            (signals / f"go-{n}").touch()
            outcomes = wait_for_signals(signals, f"{n}-*", racers, children)
            won = [name for name in outcomes if name.endswith(".won")]
            assert len(won) == 1, f"round {n}: {outcomes}"
            winners.append(int(won[0].removesuffix(".won").split("-")[1]))
            (signals / f"release-{n}").touch()
            wait_for_signals(signals, f"free-{n}", 1, children)
        assert [child.wait(timeout=30) for child in children] == [0] * racers
    finally:
        for child in children:
            child.kill()
            child.wait()
    entries = LocalStore(root).entries("prod")
    assert [(entry.seq, entry.release_id) for entry in entries] == [(n, n) for n in range(1, rounds + 1)]
    notes = [entry.note.split(":") for entry in entries]
    assert [(int(n), int(pid)) for n, pid, _ in notes] == list(enumerate(winners))
    assert len({lock_id for _, _, lock_id in notes}) == rounds


def wait_for_signals(
    folder: Path, pattern: str, count: int, children: list[subprocess.Popen[str]]
) -> list[str]:
    deadline = time.monotonic() + 30
    while len(found := sorted(path.name for path in folder.glob(pattern))) < count:
        # Exit 0 is a racer done with its rounds (losers of the last one); anything else failed.
        assert all(child.poll() in (None, 0) for child in children), "a racer failed"
        assert time.monotonic() < deadline, f"waited 30 s for {count} x {pattern}, have {found}"
        time.sleep(0.003)
    return found


def test_racing_promoters_one_wins_each_round_and_the_ledger_has_no_duplicates(tmp_path: Path) -> None:
    race(tmp_path, rounds=5)


@pytest.mark.stress
def test_racing_promoters_many_rounds(tmp_path: Path) -> None:
    race(tmp_path, rounds=200)
