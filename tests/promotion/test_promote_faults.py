"""kill -9 during `releasekit promote prod`, and sixteen promoters at once (real processes, a
real DuckDB file or PostgreSQL database, a real git repository).

The repository is test_promote.py's: staging promotes from dev with equal parameters, prod
from staging with another `min_amount`, so every promotion to prod builds revenue and
big_spenders. Each round makes a new release on dev, promotes it to staging in-process, then:

Kill rounds launch `releasekit promote prod` and SIGKILL it at a uniform random delay in
[0, 1.2 x a normal run] or at an aimed moment (polled in a tight loop): as prod's branch
moves, as dbt logs the first relation it created (during the build), as the `switching`
entry appears, as the warehouse shows the switch committed (the `succeeded` entry still to
come; PostgreSQL only, see DUCKDB_AIMS), as the `succeeded` entry appears (the tag still to
come). With the run dead they check that prod serves exactly one whole release its ledger
records (marker, views, nothing else in the schema, every view readable), that its branch
is where it was or at staging's commit, and that staging is untouched. Then they run `releasekit promote prod`
again, which must exit 0 and leave: prod serving staging's commit, exactly one `succeeded`
entry for that release and every announced switch settled once, prod's branch at
staging's commit, the tag `release/prod/<id>` at it, no worktree registered besides the
repository's own, and no `releasekit-worktree-*` folder in the runs' TMPDIR.

Race rounds start sixteen `releasekit promote prod` at once: exactly one creates the new
release; every other one either exits 4 naming the lock's holder ("locked") or exits 0
having found prod's branch up to date and nothing to switch ("up to date"); the ledger
gains exactly one release, with contiguous seqs.

Run with -s to see where the kills landed and how each race went. The stress variants run
RELEASEKIT_STRESS_ROUNDS random kills plus more aimed ones (RELEASEKIT_FAULT_SEED replays
a run's delays and order), and more race rounds.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest

from releasekit.state import ledger
from releasekit.state.base import LedgerEntry
from tests.support.ledger_checks import assert_settled_once
from tests.support.postgres import fresh_database
from tests.support.promote import (
    Bench,
    DbtCreates,
    Killed,
    Served,
    assert_contiguous,
    assert_serves_one_release,
    branch_moves,
    entry_appears,
    kill_after,
    kill_when,
    make_bench,
    rev,
    served,
    switch_commits,
    temp_worktrees,
    worktrees,
)

pytestmark = pytest.mark.integration

STRESS_ROUNDS = int(os.environ.get("RELEASEKIT_STRESS_ROUNDS", "20"))
RANDOM_SPAN = 1.2  # random kills land in [0, 1.2 x a normal run]
PROMOTE = ("promote", "prod")

BEFORE = "before the branch moved"
MOVED = "branch moved, switch not announced"
ANNOUNCED = "switching recorded, switch not committed"
COMMITTED = "switch committed, succeeded not recorded"
RECORDED = "succeeded recorded, not tagged"
TAGGED = "tagged (its work was done)"
PHASES = (BEFORE, MOVED, ANNOUNCED, COMMITTED, RECORDED, TAGGED)
# What the rerun adds to the ledger, by where the kill left the promotion.
RERUN_ADDS = {
    BEFORE: ["switching", "succeeded"],
    MOVED: ["switching", "succeeded"],
    ANNOUNCED: ["abandoned", "switching", "succeeded"],
    COMMITTED: ["succeeded"],  # settled from the marker
    RECORDED: [],
    TAGGED: [],
}

Trigger = Callable[[Bench], AbstractContextManager[Callable[[], bool]]]
AIMS: dict[str, tuple[Trigger, str]] = {  # aim -> (trigger, the earliest phase it may leave)
    "branch move": (lambda bench: nullcontext(branch_moves(bench.repo, "prod")), MOVED),
    "dbt build": (lambda bench: nullcontext(DbtCreates(bench.repo)), MOVED),
    "switching entry": (lambda bench: nullcontext(entry_appears(bench.repo, "prod", "switching")), ANNOUNCED),
    "switch commit": (lambda bench: switch_commits(bench, "prod", "prod"), ANNOUNCED),
    "succeeded entry": (lambda bench: nullcontext(entry_appears(bench.repo, "prod", "succeeded")), RECORDED),
}
# On DuckDB the switch's commit shows only as the checkpoint that follows it, and DuckDB
# itself does not survive a kill inside a checkpoint: the file is left with a block whose
# checksum fails, and no client can prevent that (DuckDB 1.4.4, 1.5.6 and 2.0.1 alike; the
# warehouse names such a file as damaged). So the switch commit is aimed at on PostgreSQL,
# where the commit is seen through the marker, and on DuckDB only random kills may land there.
DUCKDB_AIMS = [aim for aim in AIMS if aim != "switch commit"]
# The branch move is git's alone: the same on every warehouse, so aimed at on DuckDB only.
POSTGRES_AIMS = [aim for aim in AIMS if aim != "branch move"]
# Stress: later aimed kills land up to this long after their trigger (the parse that follows
# the branch move takes seconds; the switch, `succeeded`, cleanup and tag take milliseconds).
AIM_JITTER = {
    "branch move": 4.0,
    "dbt build": 0.15,
    "switching entry": 0.03,
    "switch commit": 0.005,
    "succeeded entry": 0.08,
}


@dataclass(frozen=True)
class Plan:
    aim: str  # "random", or a key of AIMS
    after: float = 0.0  # aimed: seconds between the trigger and the kill


@dataclass(frozen=True)
class Before:
    """prod (and staging) just before a round's run, with a new release on staging."""

    entries: list[LedgerEntry]
    head: str  # prod's branch
    commit: str  # what staging serves: the commit the run promotes
    live: int  # prod's live release
    staging: Served


@dataclass(frozen=True)
class Result:
    n: int
    plan: Plan
    killed: Killed
    duration: float  # a normal run, as the random delay was drawn against
    phase: str
    left: tuple[int, int]  # registered worktrees and temp folders the kill left
    rerun: float  # seconds


# --- kill rounds ----------------------------------------------------------------------------


def _bench(tmp_path: Path, database: str | None) -> Bench:
    """The repository, and one normal promotion to prod measured (the random kills' span)."""
    bench = make_bench(tmp_path, database)
    before = _before(bench)
    run = bench.run(*PROMOTE)
    assert run.code == 0, run.text()
    _check_recovered(bench, before, before.entries, BEFORE)
    bench.durations.append(run.seconds)
    return bench


def _before(bench: Bench) -> Before:
    commit = bench.new_release_on_staging()
    entries = bench.entries()
    assert_settled_once(entries)
    head, live = rev(bench.repo, "refs/heads/prod"), ledger.live_release_id(entries)
    assert head is not None and live is not None and head != commit
    return Before(entries, head, commit, live, served(bench, "staging"))


def _kill(bench: Bench, n: int, plan: Plan, duration: float, rng: random.Random) -> Killed:
    log = bench.logs / f"round-{n:03d}.log"
    if plan.aim == "random":
        return kill_after(bench, PROMOTE, rng.uniform(0, RANDOM_SPAN * duration), log)
    trigger, _ = AIMS[plan.aim]
    with trigger(bench) as fired:
        return kill_when(bench, PROMOTE, fired, log, after=plan.after)


def _after_kill(bench: Bench, before: Before) -> tuple[str, list[LedgerEntry]]:
    """With the run dead: prod serves one whole release, staging is untouched; where did the
    kill leave the promotion?"""
    entries = bench.entries()
    assert entries[: len(before.entries)] == before.entries, "the ledger was rewritten"
    new = entries[len(before.entries) :]
    release = ledger.next_release_id(before.entries)
    assert all(e.kind == "deploy" and e.release_id == release for e in new), new
    outcomes = [e.outcome for e in new]
    assert outcomes in ([], ["switching"], ["switching", "succeeded"]), outcomes
    head = rev(bench.repo, "refs/heads/prod")
    assert head in (before.head, before.commit), f"prod's branch is at {head}"
    now = served(bench, "prod")
    serving = assert_serves_one_release(now, entries, "prod")
    assert serving in (before.live, release), serving
    if serving == release:
        assert now.marker is not None and now.marker.git_sha == before.commit
    staging = served(bench, "staging")
    assert (staging.marker, staging.views) == (before.staging.marker, before.staging.views), "staging changed"
    if head == before.head:
        assert not new and serving == before.live, "prod changed before its branch moved"
        return BEFORE, entries
    if not new:
        assert serving == before.live, "prod switched before its switch was announced"
        return MOVED, entries
    if outcomes == ["switching"]:
        return (ANNOUNCED if serving == before.live else COMMITTED), entries
    assert serving == release, "succeeded recorded, but prod does not serve it"
    tag = rev(bench.repo, f"refs/tags/release/prod/{release}")
    assert tag in (None, before.commit), f"release/prod/{release} tags {tag}"
    return (RECORDED if tag is None else TAGGED), entries


def _check_recovered(bench: Bench, before: Before, after: list[LedgerEntry], phase: str) -> None:
    """After a run that exited 0: prod serves staging's commit, promoted once, tagged, and
    no worktree is left. `after` is the ledger the kill left, `phase` where it left it."""
    repo, entries = bench.repo, bench.entries()
    assert_settled_once(entries)
    assert_contiguous(entries)
    assert rev(repo, "refs/heads/prod") == before.commit, "prod's branch is not at staging's commit"
    now = served(bench, "prod")
    live = assert_serves_one_release(now, entries, "prod")
    assert live == ledger.live_release_id(entries)
    assert now.marker is not None and now.marker.git_sha == before.commit, "prod serves another commit"
    added = entries[len(before.entries) :]
    promoted = [e.release_id for e in added if e.kind == "deploy" and e.outcome == "succeeded"]
    assert promoted == [live], f"the round created releases {promoted}; prod serves {live}"
    assert len([e for e in entries if e.outcome == "succeeded" and e.release_id == live]) == 1
    by_rerun = [e.outcome for e in entries[len(after) :]]
    assert by_rerun == RERUN_ADDS[phase], (phase, by_rerun)
    tag = rev(repo, f"refs/tags/release/prod/{live}")
    assert tag == before.commit, f"{phase}: tag release/prod/{live} is at {tag}, not at {before.commit}"
    assert worktrees(repo) == [], f"{phase}: worktrees left registered: {worktrees(repo)}"
    assert temp_worktrees(bench) == [], f"{phase}: temporary worktrees left: {temp_worktrees(bench)}"


def _round(bench: Bench, n: int, plan: Plan, rng: random.Random) -> Result:
    before = _before(bench)
    duration = statistics.median(bench.durations[-5:])
    killed = _kill(bench, n, plan, duration, rng)
    output = (bench.logs / f"round-{n:03d}.log").read_text()
    assert killed.exited_first in (None, 0), f"round {n} ({plan}) exited {killed.exited_first}: {output}"
    phase, after = _after_kill(bench, before)
    if killed.exited_first == 0:
        assert phase == TAGGED, phase
    left = (len(worktrees(bench.repo)), len(temp_worktrees(bench)))
    _print_kill(n, plan, killed, duration, phase, left)
    if plan.aim != "random":  # an aimed kill lands at or after what it aims at
        assert killed.triggered, f"round {n}: the run exited before the {plan.aim}: {output}"
        assert PHASES.index(phase) >= PHASES.index(AIMS[plan.aim][1]), (n, plan.aim, phase)

    rerun = bench.run(*PROMOTE)
    assert rerun.code == 0, f"round {n}, killed {phase}: the rerun failed\n{rerun.text()}"
    if phase == BEFORE:
        bench.durations.append(rerun.seconds)
    _check_recovered(bench, before, after, phase)
    print(f"; rerun ok ({rerun.seconds:.1f} s)", flush=True)
    return Result(n, plan, killed, duration, phase, left, rerun.seconds)


def _print_kill(
    n: int, plan: Plan, killed: Killed, duration: float, phase: str, left: tuple[int, int]
) -> None:
    if plan.aim == "random":
        when = f"at {killed.delay:5.3f} s ({killed.delay / duration:4.0%} of {duration:.2f} s)"
    else:
        when = f"{1000 * plan.after:6.1f} ms after the {plan.aim} ({killed.delay:5.3f} s)"
    if killed.exited_first is not None:
        when += ", exited first"
    leftovers = f"; left {left[0]} registered worktree(s), {left[1]} temp folder(s)" if any(left) else ""
    print(f"  round {n:3d} killed {when} -> {phase}{leftovers}", end="", flush=True)


def _report(results: list[Result]) -> None:
    for aim in sorted({r.plan.aim for r in results}):
        group = [r for r in results if r.plan.aim == aim]
        counts = Counter(r.phase for r in group)
        shown = ", ".join(f"{phase}: {counts[phase]}" for phase in PHASES if counts[phase])
        how = "at random" if aim == "random" else f"on the {aim}"
        print(f"  killed {how} ({len(group)}): {shown}")
    print(f"  kills that left a worktree or its temp folder behind: {sum(any(r.left) for r in results)}")


def _run_kills(tmp_path: Path, plans: list[Plan], seed: int, title: str, database: str | None = None) -> None:
    started = time.monotonic()
    bench = _bench(tmp_path, database)
    rng = random.Random(seed)
    print(f"\n{title}, seed {seed}; a normal promote prod takes {bench.durations[0]:.2f} s")
    results = [_round(bench, n, plan, rng) for n, plan in enumerate(plans, start=1)]
    _report(results)
    print(f"  {len(results)} rounds in {time.monotonic() - started:.0f} s")


def _seed() -> int:
    return int(os.environ.get("RELEASEKIT_FAULT_SEED", str(random.randrange(2**32))))


def _stress_plans(seed: int, aims: list[str]) -> list[Plan]:
    rng = random.Random(seed ^ 0x5EED)
    plans = [Plan("random") for _ in range(STRESS_ROUNDS)]
    for aim in aims:
        jitter = AIM_JITTER[aim]
        plans += [Plan(aim, 0.0 if i == 0 else rng.uniform(0, jitter)) for i in range(3)]
    rng.shuffle(plans)
    return plans


@pytest.mark.slow
def test_kill_9_during_promote_prod_leaves_a_promotion_the_rerun_finishes(tmp_path: Path) -> None:
    plans = [Plan("random"), *(Plan(aim) for aim in DUCKDB_AIMS)]
    _run_kills(tmp_path, plans, _seed(), "kill -9 during promote prod")


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_9_during_promote_prod_on_postgres(tmp_path: Path) -> None:
    plans = [Plan("random"), *(Plan(aim) for aim in POSTGRES_AIMS)]
    with fresh_database() as database:
        _run_kills(tmp_path, plans, _seed(), "kill -9 during promote prod on PostgreSQL", database)


@pytest.mark.stress
def test_kill_9_during_promote_prod_stress(tmp_path: Path) -> None:
    seed = _seed()
    plans = _stress_plans(seed, DUCKDB_AIMS)
    _run_kills(tmp_path, plans, seed, f"kill -9 during promote prod, stress ({len(plans)} rounds)")


@pytest.mark.stress
@pytest.mark.postgres
def test_kill_9_during_promote_prod_on_postgres_stress(tmp_path: Path) -> None:
    seed = _seed()
    plans = _stress_plans(seed, POSTGRES_AIMS)
    with fresh_database() as database:
        title = f"kill -9 during promote prod on PostgreSQL, stress ({len(plans)} rounds)"
        _run_kills(tmp_path, plans, seed, title, database)


# --- race rounds ----------------------------------------------------------------------------

RACERS = 16
PROMOTED = re.compile(r"prod is now release (\d+) \(commit ")
HOLDER = re.compile(r"environment 'prod' is locked by .*? \(pid (\d+) on ")
UP_TO_DATE = re.compile(r"branch prod: up-to-date .*Nothing changed: prod stays on release (\d+);")


@dataclass(frozen=True)
class Racer:
    pid: int
    code: int
    seconds: float  # from the first launch to its exit
    text: str  # its output, line wrapping undone

    @property
    def outcome(self) -> str:
        if self.code == 0 and PROMOTED.search(self.text):
            return "promoted"
        if self.code == 0 and UP_TO_DATE.search(self.text):
            return "up to date"
        if self.code == 4 and HOLDER.search(self.text):
            return "locked"
        return f"exit {self.code}"

    def release(self) -> int:
        found = PROMOTED.search(self.text) or UP_TO_DATE.search(self.text)
        assert found is not None, self.text
        return int(found[1])

    def holder(self) -> int:
        found = HOLDER.search(self.text)
        assert found is not None, self.text
        return int(found[1])


def _race(bench: Bench, n: int) -> list[Racer]:
    logs = [bench.logs / f"race-{n:03d}-{i:02d}.log" for i in range(RACERS)]
    outs = [log.open("w") for log in logs]
    started = time.monotonic()
    try:
        procs = [bench.launch(PROMOTE, out) for out in outs]  # as close to at once as Popen goes
        finished: dict[int, float] = {}
        while len(finished) < RACERS:
            assert time.monotonic() - started < 300, "a promoter runs for 5 minutes"
            for i, proc in enumerate(procs):
                if i not in finished and proc.poll() is not None:
                    finished[i] = time.monotonic() - started
            time.sleep(0.01)
    finally:
        for out in outs:
            out.close()
    return [
        Racer(proc.pid, proc.returncode, finished[i], " ".join(logs[i].read_text().split()))
        for i, proc in enumerate(procs)
    ]


def _race_round(bench: Bench, n: int) -> None:
    before = _before(bench)
    racers = _race(bench, n)
    _print_race(n, racers)
    outcomes = Counter(r.outcome for r in racers)
    shown = "\n".join(f"  pid {r.pid}: {r.outcome} after {r.seconds:.1f} s: {r.text[:300]}" for r in racers)
    assert outcomes["promoted"] == 1, f"round {n}: {dict(outcomes)}\n{shown}"
    assert set(outcomes) <= {"promoted", "locked", "up to date"}, f"round {n}: {dict(outcomes)}\n{shown}"
    [winner] = [r for r in racers if r.outcome == "promoted"]
    pids = {r.pid for r in racers}
    for r in racers:
        if r.outcome == "locked":  # the holder it names is another promoter of this round
            assert r.holder() in pids - {r.pid}, f"pid {r.pid} names holder {r.holder()}"
        if r.outcome == "up to date":  # it came after the winner: nothing left to switch
            assert r.release() == winner.release(), r.text
    entries = bench.entries()
    release = ledger.next_release_id(before.entries)
    added = [(e.kind, e.outcome, e.release_id) for e in entries[len(before.entries) :]]
    assert added == [("deploy", "switching", release), ("deploy", "succeeded", release)], added
    assert winner.release() == release
    _check_recovered(bench, before, before.entries, BEFORE)


def _print_race(n: int, racers: list[Racer]) -> None:
    outcomes = Counter(r.outcome for r in racers)
    slowest = max(r.seconds for r in racers)
    print(f"  round {n}: {RACERS} promoters, the last done after {slowest:.1f} s")
    for r in racers:
        if r.outcome == "promoted":
            print(f"    pid {r.pid} promoted release {r.release()} (exit 0) after {r.seconds:.1f} s")
    named = Counter(r.holder() for r in racers if r.outcome == "locked")
    if outcomes["locked"]:
        holders = ", ".join(f"pid {pid}: {count}" for pid, count in named.items())
        print(f"    locked out (exit 4, naming the holder): {outcomes['locked']} ({holders})")
    if outcomes["up to date"]:
        print(f"    found prod's branch up to date and nothing to switch (exit 0): {outcomes['up to date']}")
    others = [r for r in racers if r.outcome not in ("promoted", "locked", "up to date")]
    for outcome in sorted({r.outcome for r in others}):
        group = [r for r in others if r.outcome == outcome]
        print(f"    {outcome}: {len(group)}, e.g. pid {group[0].pid}: {group[0].text[:300]}")


def _run_races(tmp_path: Path, rounds: int, title: str, database: str | None = None) -> None:
    started = time.monotonic()
    bench = make_bench(tmp_path, database)
    print(f"\n{title}")
    for n in range(1, rounds + 1):
        _race_round(bench, n)
    entries = bench.entries()
    assert_contiguous(entries)
    assert [e.release_id for e in entries if e.outcome == "succeeded"] == list(range(1, rounds + 2))
    print(f"  {rounds} round(s) in {time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_sixteen_concurrent_promoters_make_one_release(tmp_path: Path) -> None:
    _run_races(tmp_path, 1, f"{RACERS} concurrent promote prod")


@pytest.mark.slow
@pytest.mark.postgres
def test_sixteen_concurrent_promoters_on_postgres(tmp_path: Path) -> None:
    with fresh_database() as database:
        _run_races(tmp_path, 1, f"{RACERS} concurrent promote prod on PostgreSQL", database)


@pytest.mark.stress
def test_sixteen_concurrent_promoters_stress(tmp_path: Path) -> None:
    rounds = max(3, STRESS_ROUNDS // 4)
    _run_races(tmp_path, rounds, f"{RACERS} concurrent promote prod, stress ({rounds} rounds)")
