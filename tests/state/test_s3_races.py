"""The S3 store under real concurrency: separate processes (not threads) on one bucket.

1. 16 processes race for one environment's lock, round after round: exactly one wins
   each round, while it still holds the lock every other racer has tried and been refused.
2. 16 processes append to one ledger and write the registry at once: no entry lost or
   duplicated, each process's entries in its own order, seqs 1..n without a gap, and
   every registry record where the last compare-and-swap left it.

The racers reach moto through `FaultProxy(atomic=True)`, which makes moto's conditional
writes atomic as S3's are (see tests/s3_faults.py); it injects no fault here. The default
run races a small slice; `-m stress` the full sizes. Run with -s for the timings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3 import Bucket
from tests.support.s3_faults import FaultProxy

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_s3_workers.py"
RACERS = 16


@pytest.fixture
def proxy(bucket: Bucket) -> Iterator[FaultProxy]:
    with FaultProxy(bucket.endpoint, atomic=True) as proxy:
        yield proxy


class Workers:
    """`RACERS` worker processes running one command; each one's stderr kept in a file."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}
        self.children = []
        for n in range(RACERS):
            with (folder / f"worker-{n}.log").open("w") as log:
                self.children.append(
                    subprocess.Popen([sys.executable, str(WORKER), *args], env=environ, stderr=log, text=True)
                )

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def said(self) -> str:
        """What the workers wrote to stderr: why one failed."""
        logs = sorted(self.folder.glob("worker-*.log"))
        return "\n".join(f"{log.name}: {log.read_text()}" for log in logs if log.stat().st_size)

    def wait_for(self, folder: Path, pattern: str, count: int) -> list[str]:
        """The names of `count` signal files matching `pattern` in `folder`, once there."""
        deadline = time.monotonic() + 60
        while len(found := sorted(path.name for path in folder.glob(pattern))) < count:
            # Exit 0 is a racer done with its rounds (losers of the last one); anything else failed.
            assert all(child.poll() in (None, 0) for child in self.children), self.said()
            assert time.monotonic() < deadline, f"waited 60 s for {count} x {pattern}, have {found}"
            time.sleep(0.005)
        return found

    def finish(self, timeout: float) -> None:
        codes = [child.wait(timeout=timeout) for child in self.children]
        assert codes == [0] * RACERS, self.said()

    def stop(self) -> None:
        for child in self.children:
            child.kill()
            child.wait()


# --- 1. racing for the lock ------------------------------------------------------------


def race_for_the_lock(bucket: Bucket, proxy: FaultProxy, signals: Path, rounds: int) -> float:
    """`RACERS` processes try the lock of `prod` at once, `rounds` times; seconds it took."""
    signals.mkdir()
    workers = Workers(signals, "race", bucket.url, proxy.url, "prod", str(rounds), str(signals))
    winners = []
    try:
        workers.wait_for(signals, "ready-*", RACERS)
        started = time.monotonic()
        for n in range(rounds):
            here = signals / str(n)
            here.mkdir()
            (here / "go").touch()
            outcomes = workers.wait_for(here, "*.*", RACERS)
            won = [name for name in outcomes if name.endswith(".won")]
            assert len(won) == 1, f"round {n}: {outcomes}"
            winners.append(int(won[0].removesuffix(".won")))
            (here / "release").touch()
            workers.wait_for(here, "free", 1)
        seconds = time.monotonic() - started
        workers.finish(timeout=60)
    finally:
        workers.stop()
    entries = bucket.store().entries("prod")
    assert [(entry.seq, entry.release_id) for entry in entries] == [(n, n) for n in range(1, rounds + 1)]
    notes = [entry.note.split(":") for entry in entries]
    assert [(int(n), int(pid)) for n, pid, _ in notes] == list(enumerate(winners))
    assert len({lock_id for _, _, lock_id in notes}) == rounds  # a new lease every round
    assert bucket.store().lock_holders() == []  # every winner let go
    print(f"\n{RACERS} processes x {rounds} rounds of racing for one lock: {seconds:.1f} s")
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize(
    "rounds", [pytest.param(5, id="5-rounds"), pytest.param(100, id="100-rounds", marks=pytest.mark.stress)]
)
def test_racing_for_one_lock_one_process_wins_each_round(
    bucket: Bucket, proxy: FaultProxy, tmp_path: Path, rounds: int
) -> None:
    race_for_the_lock(bucket, proxy, tmp_path / "signals", rounds)


# --- 2. appending and registering at once ----------------------------------------------


def write_at_once(bucket: Bucket, proxy: FaultProxy, signals: Path, count: int) -> float:
    signals.mkdir()
    workers = Workers(signals, "write-many", bucket.url, proxy.url, "prod", str(count), str(signals / "go"))
    try:
        workers.wait_for(signals, "ready-*", RACERS)
        started = time.monotonic()
        (signals / "go").touch()
        workers.finish(timeout=300)
        seconds = time.monotonic() - started
    finally:
        workers.stop()
    store = bucket.store()

    entries = store.entries("prod")
    assert [entry.seq for entry in entries] == list(range(1, RACERS * count + 1))
    notes = [entry.note for entry in entries]
    assert len(set(notes)) == RACERS * count
    for pid in workers.pids:
        mine = [note for note in notes if note.startswith(f"{pid}:")]
        assert mine == [f"{pid}:{n}" for n in range(count)]  # all there, in its order

    records = {record.branch: record for record in store.branches()}
    kept = {f"w{pid}/b{n}" for pid in workers.pids for n in range(0, count, 2)}
    assert set(records) == kept | {"shared"}
    assert all(records[name].owner == f"{name[1:].split('/')[0]}:{name.split('/b')[1]}" for name in kept)
    # The shared record holds the last write made; the last write of whichever process made it.
    assert records["shared"].owner in {f"{pid}:{count - 1}" for pid in workers.pids}
    print(
        f"\n{RACERS} processes x {count} appends + {2 * count} registrations at once: {seconds:.1f} s "
        f"({RACERS * count / seconds:.0f} appends/s)"
    )
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize(
    "count", [pytest.param(2, id="2-each"), pytest.param(25, id="25-each", marks=pytest.mark.stress)]
)
def test_appending_and_registering_at_once_loses_and_duplicates_nothing(
    bucket: Bucket, proxy: FaultProxy, tmp_path: Path, count: int
) -> None:
    write_at_once(bucket, proxy, tmp_path / "signals", count)
