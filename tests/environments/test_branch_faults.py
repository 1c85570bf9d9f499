"""kill -9 during `releasekit env up` / `env down` (real processes, a real DuckDB file) leaves
nothing half-made that the next run or `env gc` does not clean up; the same rounds run on
PostgreSQL.

Each round kills one run, then, with the process dead, checks that

- the state folder reads cleanly and the ledger only grew;
- the warehouse has either no schema for the branch or a complete one: every view of a
  release the branch's ledger records, and its marker; a schema exists only while the
  registry records it (the registry is the only authority `env down`/`env gc` drop by);
- dev, the base, is untouched;

then recovers in one of two ways, alternating: rerun the same command (`env up` must
leave a complete environment with exactly one settled release; `env down` must leave no
schema and no record), or delete the git branch and run `env gc` (no record, no schema,
`env list` empty, no schema with the branch prefix left). Every recovery must leave every
announced switch settled exactly once, and `releasekit gc` afterwards must not drop
anything dev's views read.

Kills land at uniform random delays in [0, 1.2 x a normal run], and at aimed points: as a
registry record's temp file appears, as the registry record appears, as the `switching`
entry appears (`env up`), as the `teardown` entry appears (`env down`), polled in a tight
loop. Branch names cycle through a small pool, so later rounds run against ledgers with
history (an earlier up and teardown of the same branch).

The last test is the deterministic form of the temp-file kill (no processes).

Run with -s to see where the kills landed. The stress variant runs
RELEASEKIT_STRESS_ROUNDS random rounds of each command plus more aimed ones;
RELEASEKIT_FAULT_SEED replays a run's delays and order.
"""

from __future__ import annotations

import dataclasses
import os
import random
import statistics
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.state import ledger
from releasekit.state.base import BranchEnvironment, LedgerEntry
from releasekit.state.codec import env_key
from releasekit.state.local import LocalStore
from releasekit.warehouse.base import MARKER_VIEW
from releasekit.warehouse.naming import branch_schema
from tests.support.branch_faults import (
    Killed,
    Served,
    StateView,
    entry_appears,
    kill_after,
    kill_when,
    read_state,
    registry_appears,
    registry_temp_appears,
    run_ok,
    served,
    temp_files,
)
from tests.support.cli_runs import run_cli
from tests.support.ledger_checks import assert_settled_once, release_views
from tests.support.postgres import fresh_database, postgres_profile
from tests.support.projects import git, make_repo

pytestmark = pytest.mark.integration

STRESS_ROUNDS = int(os.environ.get("RELEASEKIT_STRESS_ROUNDS", "20"))
RANDOM_SPAN = 1.2  # random kills land in [0, 1.2 x a normal run]
# Stress: later aimed kills land up to this long after their trigger. The switch and its
# `succeeded` entry follow `switching` within a few ms; the schema drop takes longer.
AIM_JITTER = {"switching entry": 0.02, "teardown entry": 0.1}
BRANCHES = ("fault_plain", 'fault/$(touch${IFS}canary);"k"', "Fault/Ünï-cödé")

Op = Literal["up", "down"]
Recovery = Literal["rerun", "env gc"]

UP_NONE = "up: killed before the registry record (nothing written)"
UP_REGISTERED = "up: registry record only (switch not announced)"
UP_ANNOUNCED = "up: switching recorded, switch not committed"
UP_COMMITTED = "up: switch committed, succeeded not recorded"
UP_DONE = "up: complete (succeeded recorded)"
DOWN_NONE = "down: killed before the drop (nothing changed)"
DOWN_DROPPED = "down: schema dropped, teardown not recorded"
DOWN_TORN = "down: teardown recorded, registry record left"
DOWN_DONE = "down: complete (registry record forgotten)"


@dataclass(frozen=True)
class Plan:
    op: Op
    aim: str  # "random", or the file whose appearance triggers the kill
    recovery: Recovery
    after: float = 0.0  # aimed: seconds between the trigger and the kill


@dataclass(frozen=True)
class Result:
    n: int
    plan: Plan
    branch: str
    killed: Killed
    duration: float  # a normal run of the op, as the random delay was drawn against
    phase: str
    temps_after_kill: list[str]
    temps_after_recovery: list[str]


@dataclass
class Bench:
    """A repository with dev deployed, and what dev looked like before any round."""

    repo: Path
    logs: Path
    rng: random.Random
    physical_schema: str
    dev_views: dict[str, str]
    dev_live: LedgerEntry
    physical: set[str]
    prefix: str
    reserved: list[str]
    database: str | None  # PostgreSQL; None: the repository's DuckDB file
    durations: dict[Op, list[float]] = field(default_factory=dict)

    def schema(self, branch: str) -> str:
        return branch_schema(branch, prefix=self.prefix, reserved=self.reserved)

    def duration(self, op: Op) -> float:
        return statistics.median(self.durations[op][-5:])


def _bench(tmp_path: Path, seed: int, database: str | None) -> Bench:
    profile = None if database is None else postgres_profile(database)
    repo = make_repo(tmp_path / "repo", profile=profile)
    workspace = Workspace.open(repo)
    assert api.deploy(workspace, "dev").ok
    dev = workspace.config.environment("dev")
    dev_live = api.releases(workspace, "dev")[-1]
    config = workspace.config
    reserved = [env.schema for env in config.environments.values()]
    reserved += [config.physical_schema, workspace.run_context(dev).connection.database]
    logs = tmp_path / "logs"
    logs.mkdir()
    # A normal run of each, on a branch outside the pool, to draw kill delays against; the
    # first run of the CLI is slower (cold caches), so the second is measured.
    git(repo, "branch", "probe")
    for _ in range(2):
        up = run_ok(repo, "env", "up", "probe")
        down = run_ok(repo, "env", "down", "probe")
    git(repo, "branch", "-D", "probe")
    now = served(repo, "dev", config.physical_schema, database)
    assert not now.unreadable
    return Bench(
        repo=repo,
        logs=logs,
        rng=random.Random(seed),
        physical_schema=config.physical_schema,
        dev_views=now.dev_views,
        dev_live=dev_live,
        physical=now.physical,
        prefix=config.branches.schema_prefix,
        reserved=reserved,
        database=database,
        durations={"up": [up.seconds], "down": [down.seconds]},
    )


# --- one round --------------------------------------------------------------------------


def _kill(bench: Bench, n: int, plan: Plan, branch: str, duration: float) -> Killed:
    repo, args = bench.repo, ["env", plan.op, branch]
    log = bench.logs / f"round-{n:03d}-{plan.op}.log"
    if plan.aim == "random":
        return kill_after(repo, args, bench.rng.uniform(0, RANDOM_SPAN * duration), log)
    triggers: dict[str, Callable[[], Callable[[], bool]]] = {
        "registry temp file": lambda: registry_temp_appears(repo),
        "registry record": lambda: registry_appears(repo, branch),
        "switching entry": lambda: entry_appears(repo, branch, "switching", "deploy"),
        "teardown entry": lambda: entry_appears(repo, branch, "succeeded", "teardown"),
    }
    return kill_when(repo, args, triggers[plan.aim](), log, after=plan.after)


def _round(bench: Bench, n: int, plan: Plan, branch: str) -> Result:
    repo = bench.repo
    if not _git_branch_exists(repo, branch):
        git(repo, "branch", branch)
    schema = bench.schema(branch)
    if plan.op == "down":
        up = api.env_up(Workspace.open(repo), branch)
        assert up.created and up.record.schema == schema
    before = read_state(repo, branch)
    assert (before.record is not None) == (plan.op == "down")
    assert ledger.pending_switch(before.entries) is None

    temps_before = set(temp_files(repo))
    duration = bench.duration(plan.op)
    killed = _kill(bench, n, plan, branch, duration)
    assert killed.exited_first in (None, 0), (
        n,
        plan,
        (bench.logs / f"round-{n:03d}-{plan.op}.log").read_text(),
    )
    temps_after_kill = [t for t in temp_files(repo) if t not in temps_before]

    after = read_state(repo, branch)  # raises StateError if the state does not read cleanly
    now = served(repo, schema, bench.physical_schema, bench.database)
    _check_invariants(bench, branch, schema, after, now)
    assert after.entries[: len(before.entries)] == before.entries, "the ledger was rewritten"
    new = after.entries[len(before.entries) :]
    if plan.op == "up":
        phase = _after_up_kill(before, after, now, schema, new)
    else:
        phase = _after_down_kill(before, after, now, schema, new)
    if killed.exited_first == 0:
        assert phase in (UP_DONE, DOWN_DONE), phase

    if plan.recovery == "rerun" and plan.op == "up":
        _rerun_up(bench, branch, schema, before, after, phase)
    elif plan.recovery == "rerun":
        _rerun_down(bench, branch, schema, before, after)
    else:
        _env_gc(bench, branch, schema, before, after)
    temps_after_recovery = temp_files(repo)
    # A killed registry or lock-holder write leaves a temp file that reads ignore; the next
    # registry write or lock of any environment removes it (ledger folders: the next append).
    # Only an `env gc` that had no record to drop writes nothing, and may leave it for later.
    wrote = plan.op == "down" or plan.recovery == "rerun" or after.record is not None
    stale = [t for t in temps_after_recovery if not t.startswith("ledger/")]
    assert not stale or not wrote, stale
    if plan.op == "down":  # exactly one teardown, however many runs it took
        added = read_state(repo, branch).entries[len(before.entries) :]
        assert [e.kind for e in added] == ["teardown"], added

    gc = run_ok(repo, "gc")  # locks every environment: sweeps the lock folder
    final = served(repo, schema, bench.physical_schema, bench.database)
    assert not final.unreadable, f"after releasekit gc: {final.unreadable}\n{gc.stdout}"
    assert final.dev_views == bench.dev_views and final.physical == bench.physical, gc.stdout
    assert not (repo / "canary").exists(), "a branch name reached a shell"

    if read_state(repo, branch).record is not None:  # rerun of up: take it down for the next round
        api.env_down(Workspace.open(repo), branch)
    return Result(n, plan, branch, killed, duration, phase, temps_after_kill, temps_after_recovery)


def _check_invariants(bench: Bench, branch: str, schema: str, state: StateView, now: Served) -> None:
    """With no releasekit process running: the branch schema is absent or complete, only
    recorded schemas exist, dev is untouched."""
    registered = {record.schema for record in state.registered}
    orphans = {name for name in now.schemas if name.startswith(bench.prefix)} - registered
    assert not orphans, f"schemas no registry record owns (nothing would ever drop them): {orphans}"
    if state.record is not None:
        assert state.record.schema == schema and state.record.branch == branch
    if schema in now.schemas:
        assert state.record is not None
        assert now.marker is not None, f"schema {schema} has no release marker: {now.view_names}"
        assert now.marker.env == branch
        recorded = release_views(state.entries)
        assert now.marker.release_id in recorded, (
            f"the marker names release {now.marker.release_id}, which the ledger does not record"
        )
        assert now.views == recorded[now.marker.release_id], f"a mix: {now.views}"
        assert now.view_names == set(now.views) | {MARKER_VIEW}, "stray or unparsed views"
        assert set(now.views.values()) <= now.physical
    assert not now.unreadable, now.unreadable
    assert now.dev_views == bench.dev_views and now.physical == bench.physical
    assert now.dev_marker is not None and now.dev_marker.release_id == bench.dev_live.release_id
    assert state.dev_entries[-1] == bench.dev_live


def _after_up_kill(
    before: StateView, after: StateView, now: Served, schema: str, new: list[LedgerEntry]
) -> str:
    release = ledger.next_release_id(before.entries)
    assert all(e.kind == "deploy" and e.release_id == release for e in new), new
    outcomes = [e.outcome for e in new]
    assert outcomes in ([], ["switching"], ["switching", "succeeded"]), outcomes
    if after.record is None:
        assert not new and schema not in now.schemas
        return UP_NONE
    if not new:
        assert schema not in now.schemas, "a schema switched before its switch was announced"
        return UP_REGISTERED
    if outcomes == ["switching"]:
        assert ledger.pending_switch(after.entries) == new[0]
        if schema not in now.schemas:
            return UP_ANNOUNCED
        assert now.marker is not None and now.marker.release_id == release
        return UP_COMMITTED
    assert now.marker is not None and now.marker.release_id == release
    return UP_DONE


def _after_down_kill(
    before: StateView, after: StateView, now: Served, schema: str, new: list[LedgerEntry]
) -> str:
    live = ledger.live_release_id(before.entries)
    assert live is not None
    assert [(e.kind, e.outcome, e.release_id) for e in new] in ([], [("teardown", "succeeded", live)]), new
    if not new:
        assert after.record is not None
        if schema not in now.schemas:
            return DOWN_DROPPED
        assert now.marker is not None and now.marker.release_id == live
        return DOWN_NONE
    assert schema not in now.schemas, "teardown recorded before the schema was dropped"
    return DOWN_DONE if after.record is None else DOWN_TORN


# --- recoveries -------------------------------------------------------------------------


def _rerun_up(
    bench: Bench, branch: str, schema: str, before: StateView, after: StateView, phase: str
) -> None:
    repo = bench.repo
    run = run_ok(repo, "env", "up", branch)
    if phase == UP_NONE:
        bench.durations["up"].append(run.seconds)
    final = read_state(repo, branch)
    now = served(repo, schema, bench.physical_schema, bench.database)
    _check_invariants(bench, branch, schema, final, now)
    assert final.record is not None and schema in now.schemas
    assert now.views == bench.dev_views, "the branch does not serve dev's live release"
    live = ledger.live_release_id(final.entries)
    assert now.marker is not None and now.marker.release_id == live
    assert now.marker.git_sha == bench.dev_live.git_sha
    assert_settled_once(final.entries)
    added = final.entries[len(before.entries) :]
    succeeded = {e.release_id for e in added if e.kind == "deploy" and e.outcome == "succeeded"}
    assert succeeded == {live}, f"settled releases {succeeded}, live {live}"
    by_rerun = [e.outcome for e in final.entries[len(after.entries) :]]
    expected = {
        UP_NONE: ["switching", "succeeded"],
        UP_REGISTERED: ["switching", "succeeded"],
        UP_ANNOUNCED: ["abandoned", "switching", "succeeded"],
        UP_COMMITTED: ["succeeded"],
        UP_DONE: [],
    }[phase]
    assert by_rerun == expected, (phase, by_rerun)
    assert ("already up" in run.stdout) == (phase in (UP_COMMITTED, UP_DONE)), run.stdout
    if phase == UP_COMMITTED:
        assert "recovered after an interrupted run" in final.entries[-1].note
    again = api.env_up(Workspace.open(repo), branch)  # running it twice is harmless
    assert not again.created and read_state(repo, branch).entries == final.entries


def _rerun_down(bench: Bench, branch: str, schema: str, before: StateView, after: StateView) -> None:
    repo = bench.repo
    if after.record is None:  # it had finished: nothing left to take down
        run = run_cli(repo, "env", "down", branch)
        assert run.code == 2 and "no branch environment" in run.stdout + run.stderr, run.text()
    else:
        run = run_ok(repo, "env", "down", branch)
        if ledger.torn_down(after.entries) == ledger.torn_down(before.entries):
            bench.durations["down"].append(run.seconds)
    _assert_gone(bench, branch, schema, before, after)


def _env_gc(bench: Bench, branch: str, schema: str, before: StateView, after: StateView) -> None:
    repo = bench.repo
    git(repo, "branch", "-D", branch)
    run = run_ok(repo, "env", "gc")
    assert f"dropped {int(after.record is not None)} branch environment(s)" in run.stdout, run.stdout
    listed = run_ok(repo, "env", "list")
    assert "No branch environments" in listed.stdout, listed.stdout
    _assert_gone(bench, branch, schema, before, after)


def _assert_gone(bench: Bench, branch: str, schema: str, before: StateView, after: StateView) -> None:
    """No record, no schema, a settled ledger; `after` is the state the kill left."""
    repo = bench.repo
    final = read_state(repo, branch)
    now = served(repo, schema, bench.physical_schema, bench.database)
    _check_invariants(bench, branch, schema, final, now)
    assert final.record is None and final.registered == []
    assert not {name for name in now.schemas if name.startswith(bench.prefix)}, now.schemas
    assert api.env_list(Workspace.open(repo)) == []
    assert_settled_once(final.entries)
    if after.record is None:  # nothing was left to drop: the recovery changes nothing
        assert final.entries == after.entries
    else:
        assert ledger.torn_down(final.entries), "the ledger does not record the teardown"
    assert ledger.live_release_id(final.entries) is None
    teardowns = [e for e in final.entries[len(before.entries) :] if e.kind == "teardown"]
    assert len(teardowns) <= 1, f"{len(teardowns)} teardown entries"


def _git_branch_exists(repo: Path, branch: str) -> bool:
    probe = ["git", "show-ref", "--verify", "--quiet", f"refs/heads/{branch}"]
    return subprocess.run(probe, cwd=repo, check=False).returncode == 0


# --- plans and the report -----------------------------------------------------------------


def _alternating(op: Op, aim: str, count: int, after: Callable[[int], float] = lambda i: 0.0) -> list[Plan]:
    recoveries: tuple[Recovery, Recovery] = ("rerun", "env gc")
    return [Plan(op, aim, recoveries[i % 2], after(i)) for i in range(count)]


def _alternate_per_op(plans: list[Plan]) -> list[Plan]:
    """Recoveries alternating along each command's rounds, whatever group they are in."""
    seen: Counter[str] = Counter()
    result = []
    for plan in plans:
        result.append(dataclasses.replace(plan, recovery=("rerun", "env gc")[seen[plan.op] % 2]))
        seen[plan.op] += 1
    return result


def _run(
    tmp_path: Path, plans: list[Plan], seed: int, title: str, database: str | None = None
) -> list[Result]:
    bench = _bench(tmp_path, seed, database)
    print(
        f"\n{title}, seed {seed}; a normal env up takes {bench.duration('up'):.2f} s, "
        f"env down {bench.duration('down'):.2f} s"
    )
    results = []
    for n, plan in enumerate(plans, start=1):
        branch = BRANCHES[(n - 1) % len(BRANCHES)]
        results.append(_round(bench, n, plan, branch))
        _print_round(results[-1])
    _report(results)
    return results


def _print_round(r: Result) -> None:
    if r.plan.aim == "random":
        when = f"at {r.killed.delay:5.3f} s ({r.killed.delay / r.duration:4.0%} of {r.duration:.2f} s)"
    else:
        when = f"{1000 * r.plan.after:4.1f} ms after the {r.plan.aim} appeared ({r.killed.delay:5.3f} s)"
    if r.killed.exited_first is not None:
        when += ", exited first"
    temps = f"; temp files left: {r.temps_after_kill}" if r.temps_after_kill else ""
    stale = (
        f"; still there after {r.plan.recovery}: {r.temps_after_recovery}" if r.temps_after_recovery else ""
    )
    print(
        f"  round {r.n:3d} env {r.plan.op:4s} killed {when} -> {r.phase}; {r.plan.recovery} ok{temps}{stale}"
    )


def _report(results: list[Result]) -> None:
    for op in ("up", "down"):
        for aim in sorted({r.plan.aim for r in results if r.plan.op == op}):
            group = [r for r in results if r.plan.op == op and r.plan.aim == aim]
            counts = Counter(r.phase.split(": ", 1)[1] for r in group)
            shown = ", ".join(f"{phase}: {count}" for phase, count in counts.most_common())
            how = "at random" if aim == "random" else f"on the {aim}"
            print(f"  env {op} killed {how} ({len(group)}): {shown}")
    recoveries = Counter(f"{r.plan.op}/{r.plan.recovery}" for r in results)
    print("  recoveries: " + ", ".join(f"{key} {count}" for key, count in sorted(recoveries.items())))
    temps = sum(bool(r.temps_after_kill) for r in results)
    print(f"  rounds that left temp files in the state folder: {temps}")


def _seed() -> int:
    return int(os.environ.get("RELEASEKIT_FAULT_SEED", str(random.randrange(2**32))))


def _default_plans() -> list[Plan]:
    return _alternate_per_op(
        _alternating("up", "random", 2)
        + _alternating("up", "registry temp file", 1)
        + _alternating("up", "registry record", 1)
        + _alternating("up", "switching entry", 1)
        + _alternating("down", "random", 1)
        + _alternating("down", "teardown entry", 1)
    )


def _check_aims(results: list[Result], plans: list[Plan]) -> None:
    assert len(results) == len(plans)
    aimed = [r for r in results if r.plan.aim != "random"]
    assert all(r.killed.triggered for r in aimed), [
        (r.n, r.plan.aim) for r in aimed if not r.killed.triggered
    ]
    # Aimed kills land at or after what they aim at.
    assert all(r.phase != UP_NONE for r in aimed if r.plan.aim in ("registry record", "switching entry"))
    assert all(r.phase not in (UP_NONE, UP_REGISTERED) for r in aimed if r.plan.aim == "switching entry")
    assert all(r.phase not in (DOWN_NONE, DOWN_DROPPED) for r in aimed if r.plan.aim == "teardown entry")


@pytest.mark.slow
def test_kill_9_during_env_up_and_down_leaves_nothing_unrecoverable(tmp_path: Path) -> None:
    plans = _default_plans()
    _check_aims(_run(tmp_path, plans, _seed(), "kill -9 during env up / env down"), plans)


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_9_during_env_up_and_down_on_postgres(tmp_path: Path) -> None:
    plans = _default_plans()
    with fresh_database() as database:
        title = "kill -9 during env up / env down on PostgreSQL"
        _check_aims(_run(tmp_path, plans, _seed(), title, database), plans)


@pytest.mark.stress
def test_kill_9_during_env_up_and_down_stress(tmp_path: Path) -> None:
    seed = _seed()
    rng = random.Random(seed ^ 0x5EED)

    def jitter(aim: str) -> Callable[[int], float]:
        return lambda i: 0.0 if i < 2 else rng.uniform(0, AIM_JITTER[aim])

    plans = (
        _alternating("up", "random", STRESS_ROUNDS)
        + _alternating("up", "registry temp file", 2)
        + _alternating("up", "registry record", 2)
        + _alternating("up", "switching entry", 6, jitter("switching entry"))
        + _alternating("down", "random", STRESS_ROUNDS)
        + _alternating("down", "teardown entry", 6, jitter("teardown entry"))
    )
    rng.shuffle(plans)
    results = _run(tmp_path, plans, seed, f"kill -9 during env up / env down, stress ({len(plans)} rounds)")
    assert len(results) == len(plans)


def test_a_state_write_killed_before_its_rename_leaves_no_temp_file_behind(tmp_path: Path) -> None:
    """The deterministic form of the 'registry temp file' kill: the next registry write or
    lock removes temp files dead writers left in that folder, never a live writer's."""
    state = LocalStore(tmp_path / "state")
    record = BranchEnvironment(
        branch="feat/x",
        schema="br_feat_x__0123456789",
        base="dev",
        base_release=1,
        owner="me",
        created_at="2024-01-01T00:00:00+00:00",
        expires_at="2024-01-15T00:00:00+00:00",
        pinned=False,
    )
    state.register(record)
    with state.lock("dev", owner="me"):
        pass
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: no process has its pid any more

    def leave(folder: str, name: str) -> tuple[Path, Path]:
        """A dead writer's temp file and a live one's (this test's parent process)."""
        dead = tmp_path / "state" / folder / f".tmp-{gone.pid}-0123456789ab-{name}"
        live = tmp_path / "state" / folder / f".tmp-{os.getppid()}-0123456789ab-{name}"
        for path in (dead, live):
            path.write_text("{")
        return dead, live

    writes: list[Callable[[], None]] = [lambda: state.register(record), lambda: state.unregister("feat/x")]
    for write in writes:
        mine, live = leave("registry", f"{env_key('feat/x')}.json")
        other, _ = leave("registry", f"{env_key('feat/y')}.json")
        assert [r.branch for r in state.branches()] in (["feat/x"], [])  # reads ignore them
        write()
        assert not mine.exists() and not other.exists() and live.exists()
    holder, live = leave("locks", "dev.holder.json")
    with state.lock("dev", owner="me"):
        assert not holder.exists() and live.exists()
