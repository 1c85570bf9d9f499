"""Atomicity and crash safety of `deploy`, with real processes and a real DuckDB file.

1. kill -9 a deploy at a random moment (parse, build, ledger writes, the switch): the
   environment still serves exactly one whole recorded release, the ledger reads, and a
   rerun settles any pending switch once and reaches the release for HEAD. Uniform
   delays rarely hit the 30-50 ms between `switching` and `succeeded`, so the last
   round(s) kill just after the `switching` entry appears: the first at once, later
   ones bisecting 0-60 ms towards the moment the switch has committed.
2. A reader in the deploying process never sees a mix of two releases, not even while
   the switch transaction is open (it is slowed down to be sampled mid-way).
3. A warehouse held by another process: the deploy fails fast (exit 2), names the
   holder's PID, and changes nothing.

Run with -s to see where the kills landed. The stress variant takes its round count
from RELEASEKIT_STRESS_ROUNDS; RELEASEKIT_CRASH_SEED replays a run's kill delays.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from releasekit import api
from releasekit.state import ledger
from releasekit.state.base import LedgerEntry
from releasekit.warehouse.base import MARKER_VIEW, Statement
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.registry import ADAPTERS
from tests.support.crash import (
    ENV,
    SCHEMA,
    SETTLED,
    VIEWS_SQL,
    Killed,
    Served,
    assert_serves_one_release,
    count_by,
    database,
    deploy,
    deploy_and_kill,
    deploy_and_kill_on_entry,
    deploy_ok,
    entries,
    head,
    physical_schema_of,
    view_target,
)
from tests.support.ledger_checks import assert_settled_once, release_views
from tests.support.projects import commit, make_repo

pytestmark = pytest.mark.integration

DEFAULT_ROUNDS = 4
STRESS_ROUNDS = int(os.environ.get("RELEASEKIT_STRESS_ROUNDS", "40"))
STRESS_AIMED = 8  # extra stress rounds killed just after the switch is announced
AIM_WINDOW = 0.06  # seconds after the switching entry: covers the switch and `succeeded`

# Each edit puts a fresh number into a model, so every round needs a build and a switch
# (returning to an earlier text would reuse its verified relations and build nothing).
# Rotating the edited model varies how much is built: 5, 2 or 1 models.
EDITS = (
    (
        "models/stg_customers.sql",
        "select 1 as customer_id, 'ann' as name, {n} as rev union all select 2, 'bob', {n}\n",
    ),
    (
        "models/revenue.sql",
        "select customer_id, sum(amount_cents) as revenue_cents from {{{{ ref('orders') }}}}\n"
        "where {n} > 0 group by 1\n",
    ),
    (
        "models/big_spenders.sql",
        "select customer_id from {{{{ ref('revenue') }}}}\n"
        "where revenue_cents > {{{{ threshold() }}}} and {n} > 0\n",
    ),
)


def change(repo: Path, n: int) -> str:
    """Commit a content change to one model; returns the new HEAD."""
    path, template = EDITS[n % len(EDITS)]
    (repo / path).write_text(template.format(n=n), encoding="utf-8")
    return commit(repo, f"edit {n}: {path}")


# --- 1. kill -9 at random points -------------------------------------------------------


@dataclass(frozen=True)
class Round:
    n: int
    delay: float
    duration: float  # the normal deploy duration the delay was drawn against
    phase: str
    marker_changed: bool
    pending: bool
    aim: float | None = None  # seconds after the switching entry, for aimed kills


DONE = "after the succeeded entry (deploy complete)"


def _phase(
    exited_first: int | None, new: list[LedgerEntry], pending: bool, marker_changed: bool, built: bool
) -> str:
    if exited_first is not None or any(e.outcome == "succeeded" for e in new):
        return DONE
    if pending:
        return (
            "switch committed, succeeded not yet written"
            if marker_changed
            else "switching recorded, switch not committed"
        )
    if built:
        return "during build/test (new relations, no ledger entry)"
    return "no new relation yet (startup, parse, plan, early build)"


Launch = Callable[[Path, Path], Killed]  # (repo, log) -> how the killed deploy ended


def _kill_round(repo: Path, n: int, launch: Launch, duration: float, log: Path) -> tuple[Round, float | None]:
    """One round; also returns how long the rerun took when it was a full building deploy."""
    before, before_entries = assert_serves_one_release(repo)
    assert before.marker is not None
    sha = change(repo, n)
    killed = launch(repo, log)
    assert killed.exited_first in (None, 0), (
        f"round {n}: deploy exited {killed.exited_first}: {log.read_text()}"
    )

    # With the process dead: one whole recorded release is served; the ledger reads.
    after, after_entries = assert_serves_one_release(repo)
    assert after.marker is not None
    new = after_entries[len(before_entries) :]
    assert after_entries[: len(before_entries)] == before_entries, "the ledger was rewritten"
    assert all(e.outcome in ("switching", "succeeded") for e in new), [e.outcome for e in new]
    assert len({e.release_id for e in new}) <= 1
    pending = ledger.pending_switch(after_entries)
    marker_changed = after.marker.release_id != before.marker.release_id
    if marker_changed:  # only the killed run's release can have become live
        assert new and after.marker.release_id == new[0].release_id
        assert after.marker.git_sha == sha
    if pending is not None:
        assert [e.outcome for e in new] == ["switching"]
        assert pending.release_id == new[0].release_id
    built = bool(after.physical - before.physical)
    phase = _phase(killed.exited_first, new, pending is not None, marker_changed, built)

    rebuilt = _rerun_and_check(repo, sha, after, after_entries, pending, marker_changed)
    return Round(n, killed.delay, duration, phase, marker_changed, pending is not None), rebuilt


def _rerun_and_check(
    repo: Path,
    sha: str,
    after: Served,
    after_entries: list[LedgerEntry],
    pending: LedgerEntry | None,
    marker_changed: bool,
) -> float | None:
    assert after.marker is not None
    rerun = deploy_ok(repo)
    final, final_entries = assert_serves_one_release(repo)
    assert final.marker is not None
    assert final.marker.git_sha == sha == head(repo), "the rerun does not serve HEAD"
    assert_settled_once(final_entries)
    added = final_entries[len(after_entries) :]
    if pending is not None:  # settled by exactly one reconcile entry, before anything else
        assert added, "the rerun left the pending switch unsettled"
        assert added[0].release_id == pending.release_id
        assert added[0].outcome == ("succeeded" if marker_changed else "abandoned")
        assert "recovered after an interrupted run" in added[0].note
    live = final.marker.release_id
    live_succeeded = [e for e in final_entries if e.release_id == live and e.outcome == "succeeded"]
    assert len(live_succeeded) == 1, f"release {live}: {len(live_succeeded)} succeeded entries"
    committed_before = after.marker.git_sha == sha  # the killed run's switch had committed
    if committed_before:
        assert live == after.marker.release_id
        assert "Nothing changed" in rerun.stdout
        assert [e.outcome for e in added] == (["succeeded"] if pending is not None else [])
    else:
        assert live == ledger.next_release_id(after_entries)
        assert [e.outcome for e in added if e.release_id == live] == ["switching", "succeeded"]
        assert all(e.release_id in (live, getattr(pending, "release_id", None)) for e in added)

    again = deploy_ok(repo)
    assert "Nothing changed" in again.stdout, again.stdout
    assert len(entries(repo)) == len(final_entries), "a no-op rerun added a ledger entry"
    return None if committed_before else rerun.seconds


def _prepared_repo(tmp_path: Path) -> tuple[Path, float]:
    """A repo whose dev env is live, and how long a normal building deploy takes."""
    repo = make_repo(tmp_path / "repo")
    deploy_ok(repo)  # release 1: every later round replaces a live release
    change(repo, 0)
    return repo, deploy_ok(repo).seconds


def _kill_at_random_points(tmp_path: Path, rounds: int, aimed: int) -> list[Round]:
    """`rounds` deploys killed at uniform random delays, then `aimed` killed 0-60 ms after
    their `switching` entry appears: uniform delays rarely land in the 30-50 ms between
    that entry and `succeeded`, so aiming there makes a rerun reconcile for real.

    Delays are drawn from [0, 1.1 x a normal deploy's duration]: measured once up front,
    then kept current with the median of the latest reruns that built and switched, as a
    loaded machine can make one measurement several times too long or too short.
    """
    seed = int(os.environ.get("RELEASEKIT_CRASH_SEED", str(random.randrange(2**32))))
    rng = random.Random(seed)
    repo, measured = _prepared_repo(tmp_path)
    durations = [measured]
    uniform = []
    for n in range(1, rounds + 1):
        duration = statistics.median(durations[-5:])
        launch = functools.partial(_kill_after, rng.uniform(0, 1.1 * duration))
        result, rebuilt = _kill_round(repo, n, launch, duration, tmp_path / f"kill-{n}.log")
        uniform.append(result)
        durations += [rebuilt] if rebuilt is not None else []
    if uniform:
        _report(f"kill -9 at uniform random delays in [0, 1.1 x deploy], seed {seed}", uniform)
    on_switch = []
    low, high = 0.0, AIM_WINDOW  # kills at `low` came too early, at `high` too late
    for n in range(rounds + 1, rounds + aimed + 1):
        duration = statistics.median(durations[-5:])
        # The first aimed kill lands at once (switch announced, not made). Later ones
        # bisect towards the few milliseconds between the switch's COMMIT and the
        # `succeeded` entry, the one window uniform delays practically never hit.
        after = 0.0 if n == rounds + 1 else (low + high) / 2
        launch = functools.partial(_kill_on_switching, after)
        result = _kill_round(repo, n, launch, duration, tmp_path / f"kill-{n}.log")[0]
        on_switch.append(dataclasses.replace(result, aim=after))
        if result.phase == DONE:
            high = after
        elif not result.marker_changed:
            low = after
    if on_switch:
        _report("kill -9 just after the switching entry appears (bisecting the switch)", on_switch)
    # Aimed kills land after the announcement: never before it.
    assert all(r.pending or r.phase == DONE for r in on_switch)
    assert not on_switch or on_switch[0].pending
    return uniform + on_switch


def _kill_after(delay: float, repo: Path, log: Path) -> Killed:
    return deploy_and_kill(repo, delay, log)


def _kill_on_switching(after: float, repo: Path, log: Path) -> Killed:
    return deploy_and_kill_on_entry(repo, "switching", log, after=after)


def _report(title: str, results: list[Round]) -> None:
    print(f"\n{title}: {len(results)} rounds")
    for r in results:
        share = f"{r.delay / r.duration:4.0%} of {r.duration:.2f} s"
        aim = "" if r.aim is None else f", {1000 * r.aim:4.1f} ms after switching"
        print(f"  round {r.n:3d}: kill at {r.delay:5.2f} s ({share}{aim}) -> {r.phase}")
    print("  where kills landed: " + count_by(Counter(r.phase for r in results)))
    changed = sum(r.marker_changed for r in results)
    pending = sum(r.pending for r in results)
    print(f"  marker changed: {changed}, unchanged: {len(results) - changed}")
    print(f"  pending switch found: {pending}, not found: {len(results) - pending}")


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_one_whole_release(tmp_path: Path) -> None:
    results = _kill_at_random_points(tmp_path, DEFAULT_ROUNDS, aimed=1)
    assert len(results) == DEFAULT_ROUNDS + 1


@pytest.mark.stress
def test_kill_9_at_random_points_stress(tmp_path: Path) -> None:
    results = _kill_at_random_points(tmp_path, STRESS_ROUNDS, aimed=STRESS_AIMED)
    assert len(results) == STRESS_ROUNDS + STRESS_AIMED


# --- 2. a reader in the deploying process never sees a mix -----------------------------


SWITCH_PAUSE = 0.03  # seconds before each statement of the switch transaction


@dataclass(frozen=True)
class Sample:
    at: float
    marker: int | None
    views: dict[str, str | None]  # view name -> relation


def _read_loop(
    path: Path,
    physical_schema: str,
    samples: list[Sample],
    errors: list[BaseException],
    deployed: threading.Event,
) -> None:
    """Sample marker + every view target in one transaction, until shortly after the deploy."""
    con = duckdb.connect(str(path))  # same process and config: shares the deploy's database
    try:
        after_deploy = 0
        while after_deploy < 50:
            if deployed.is_set():
                after_deploy += 1
            con.execute("BEGIN TRANSACTION")
            try:
                rows = con.execute(f"SELECT release_id FROM {qualify(SCHEMA, MARKER_VIEW)}").fetchall()
                views = con.execute(VIEWS_SQL, [SCHEMA]).fetchall()
            finally:
                con.execute("COMMIT")
            targets: dict[str, str | None] = {}
            for name, sql in views:
                if name != MARKER_VIEW:
                    target = view_target(str(sql))
                    targets[str(name)] = target[1] if target and target[0] == physical_schema else None
            marker = int(rows[0][0]) if len(rows) == 1 else None
            samples.append(Sample(time.monotonic(), marker, targets))
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        con.close()


@pytest.mark.slow
def test_reader_in_the_deploying_process_never_sees_a_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    deploy_ok(repo)
    old_id = entries(repo)[-1].release_id
    change(repo, 0)  # stg_customers: rebuilds 5 of the 7 models
    physical_schema = physical_schema_of(entries(repo))

    # Time the switch, and widen its transaction: a pause before each statement keeps it
    # open, half done, for a few hundred ms, so the reader samples it mid-switch too. The
    # pause is a statement hook, given to the adapter the registry opens.
    switch_window: list[float] = []
    real_switch = DuckDBWarehouse.switch

    def timed_switch(self: DuckDBWarehouse, *args: object, **kwargs: object) -> None:
        switch_window.append(time.monotonic())
        try:
            real_switch(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            switch_window.append(time.monotonic())

    def pause(statement: Statement) -> None:
        if len(switch_window) == 1:  # inside the switch
            time.sleep(SWITCH_PAUSE)

    monkeypatch.setattr(DuckDBWarehouse, "switch", timed_switch)
    monkeypatch.setitem(ADAPTERS, "duckdb", functools.partial(DuckDBWarehouse, on_statement=pause))
    samples: list[Sample] = []
    errors: list[BaseException] = []
    deployed = threading.Event()
    reader = threading.Thread(
        target=_read_loop, args=(database(repo), physical_schema, samples, errors, deployed), daemon=True
    )
    reader.start()
    try:
        while not samples and not errors and reader.is_alive():
            time.sleep(0.01)
        result = api.deploy(api.Workspace.open(repo), ENV)
    finally:
        deployed.set()
        reader.join(timeout=60)
    assert not reader.is_alive()
    assert not errors, f"the reader failed: {errors[0]!r}"
    assert result.outcome == "succeeded", result.failures
    new_id = result.release_id
    assert new_id is not None
    assert len(result.plan.builds) == 5

    recorded = release_views(entries(repo))
    assert recorded[old_id] != recorded[new_id]
    by_release: Counter[str] = Counter()
    mixed = [s for s in samples if s.marker not in recorded or s.views != recorded[s.marker]]
    for sample in samples:
        by_release["mixed" if sample in mixed else f"release {sample.marker}"] += 1
    ids = [s.marker for s in samples if s not in mixed]
    first_new = ids.index(new_id) if new_id in ids else len(ids)
    assert set(ids[:first_new]) <= {old_id} and set(ids[first_new:]) <= {new_id}, "went back to old"
    start, end = switch_window
    during = sum(1 for s in samples if start <= s.at <= end)
    print(
        f"\nreader samples: {len(samples)} ({count_by(by_release)}); "
        f"switch took {1000 * (end - start):.1f} ms, {during} samples taken during it"
    )
    assert not mixed, f"{len(mixed)} mixed reads, first: {mixed[0]}"
    assert by_release[f"release {old_id}"] >= 1
    assert by_release[f"release {new_id}"] >= 1
    assert during >= 1, "no sample landed inside the switch transaction"

    # The in-process deploy let go of the file (the reader closed its connection): another
    # process can open it, and finds the release already live.
    rerun = deploy_ok(repo)
    assert "Nothing changed" in rerun.stdout


# --- 3. a warehouse held by another process ---------------------------------------------

_HOLDER = (
    "import duckdb, sys, time\nc = duckdb.connect(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(30)\n"
)


@pytest.mark.slow
def test_busy_warehouse_fails_fast_names_the_holder_and_changes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    deploy_ok(repo)
    change(repo, 0)
    before, before_entries = assert_serves_one_release(repo)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(database(repo))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        run = deploy(repo, timeout=60)
        # It fails fast: it does not wait for the holder (alive 30 s), which still holds.
        assert holder.poll() is None, "the holder died before the deploy finished"
    finally:
        holder.kill()
        holder.wait()
    print(f"\nbusy warehouse: exit {run.code} after {run.seconds:.2f} s; stderr: {run.stderr.strip()}")
    assert run.code == 2, run.stdout + run.stderr
    assert re.search(rf"\b{holder.pid}\b", run.stderr), run.stderr
    assert "held by" in run.stderr
    assert len(entries(repo)) == len(before_entries)

    after, _ = assert_serves_one_release(repo)
    assert after.marker == before.marker
    assert after.views == before.views
    assert ledger.pending_switch(entries(repo)) is None
    assert not [e for e in entries(repo) if e.outcome in SETTLED and e.seq > len(before_entries)]
