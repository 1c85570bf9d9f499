"""kill -9 during `releasekit refresh`: at random points, and just after the switch is
announced. After every kill the environment serves one whole release the ledger recorded;
the next refresh finishes or cleans up and records exactly one outcome; gc drops what a
killed refresh wrote. Real processes, real dbt, a real DuckDB file.

A few rounds run in the default suite; `-m stress` runs many more.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from releasekit.state import ledger
from tests.support import warehouse_reads
from tests.support.cli_runs import run_cli
from tests.support.crash import ENV, Killed, deploy_and_kill, deploy_and_kill_on_entry, entries, served
from tests.support.ledger_checks import assert_settled_once, release_views
from tests.support.refresh_project import insert, load_raw, refresh_repo

pytestmark = pytest.mark.integration

PHYSICAL = "rk__physical"
DEFAULT_ROUNDS = 1
STRESS_ROUNDS = 20


def _serves_one_recorded_release(repo: Path) -> int:
    """The schema serves exactly one release the ledger recorded; returns its id."""
    now = served(repo, PHYSICAL)
    assert now.marker is not None
    releases = release_views(entries(repo))
    assert now.marker.release_id in releases, f"marker {now.marker.release_id} names no recorded release"
    assert now.views == releases[now.marker.release_id]
    assert set(now.views.values()) <= now.physical  # every view reads a relation that exists
    return now.marker.release_id


def _refresh(repo: Path) -> str:
    run = run_cli(repo, "refresh", ENV, timeout=300)
    assert run.code in (0, 1), f"refresh exited {run.code}\n{run.stdout}\n{run.stderr}"
    return run.stdout


def _rounds(tmp_path: Path, rounds: int, seed: int) -> list[str]:
    repo = refresh_repo(tmp_path / "repo")

    def execute(statement: str) -> list[tuple[Any, ...]]:
        return warehouse_reads.sql(repo, statement)

    load_raw(execute)
    assert run_cli(repo, "deploy", ENV).code == 0
    rng = random.Random(seed)
    next_id, durations, landed = 10, [], []
    insert(execute, "orders", [(next_id, 1, 1)])
    started = time.monotonic()
    _refresh(repo)
    durations.append(time.monotonic() - started)
    for n in range(rounds + 1):
        next_id += 1
        insert(execute, "orders", [(next_id, 1 + n % 2, n + 1)])
        insert(execute, "events", [(100 + n, "open")])
        log = tmp_path / f"kill-{n}.log"
        killed: Killed
        if n < rounds:
            delay = rng.uniform(0, 1.1 * statistics.median(durations))
            killed = deploy_and_kill(repo, delay, log, command="refresh")
        else:  # the last round: just after the switch is announced, before it is made
            killed = deploy_and_kill_on_entry(repo, "switching", log, command="refresh")
        landed.append(
            "finished first" if killed.exited_first is not None else f"killed at {killed.delay:.2f} s"
        )
        _serves_one_recorded_release(repo)
        started = time.monotonic()
        _refresh(repo)  # the rerun settles a pending switch and publishes what is left to do
        durations.append(time.monotonic() - started)
        settled = entries(repo)
        assert_settled_once(settled)
        assert ledger.pending_switch(settled) is None
        live = _serves_one_recorded_release(repo)
        assert live == ledger.live_release_id(settled)
        ids = [row[0] for row in warehouse_reads.sql(repo, "select id from dev.orders order by id")]
        assert ids[-1] == next_id  # the data the rerun published is today's, whole
    # What killed runs wrote and nothing recorded is gc's to drop.
    assert run_cli(repo, "gc").code == 0
    kept = warehouse_reads.physical(repo)
    recorded = {relation for views in release_views(entries(repo)).values() for relation in views.values()}
    assert kept <= recorded
    return landed


@pytest.mark.slow
def test_kill_9_during_refresh_leaves_one_whole_release(tmp_path: Path) -> None:
    landed = _rounds(tmp_path, DEFAULT_ROUNDS, seed=14)
    assert len(landed) == DEFAULT_ROUNDS + 1
    print("\nkill -9 during refresh:", "; ".join(landed))


@pytest.mark.stress
def test_kill_9_during_refresh_stress(tmp_path: Path) -> None:
    landed = _rounds(tmp_path, STRESS_ROUNDS, seed=1414)
    print("\nkill -9 during refresh:", "; ".join(landed))
