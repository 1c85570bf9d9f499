"""Helpers for tests/promotion/test_promote_faults.py: a repository where dev, staging and
prod each serve a release, new releases made on dev and promoted to staging in-process, and
`releasekit promote prod` run as real processes (killed at a chosen moment, or sixteen at
once), then the state folder, git and the warehouse (the repository's DuckDB file, or a
PostgreSQL database) read the way the next run would, while no releasekit process runs.

Every process the tests start gets its own TMPDIR (`Bench.tmp`), so the temporary
worktrees a promotion makes (`releasekit-worktree-*`) can be counted exactly, whatever other
test runs on the machine leave in the system temp dir.

The kill helpers follow tests/environments/_fault_support.py; they kill the process group
(the `git` commands a promotion runs die with it, so none finishes after the test looked).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg2
from test_promote import FILES

from releasekit import api
from releasekit.api import Workspace
from releasekit.config.model import Connection
from releasekit.errors import ReleasekitError
from releasekit.state.base import LedgerEntry
from releasekit.state.codec import env_key
from releasekit.state.local import LocalStore
from releasekit.warehouse.base import MARKER_VIEW, ReleaseMarker
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.registry import connect
from tests.support.cli_runs import RELEASEKIT, Run, cli_env
from tests.support.ledger_checks import release_views
from tests.support.postgres import Pg, postgres_profile
from tests.support.projects import commit, git, make_repo
from tests.support.warehouse import postgres_connection

STATE = ".releasekit"
WORKTREE_PREFIX = "releasekit-worktree-"
KILL_WAIT = 60.0  # seconds a launched run may take before a kill helper gives up on it


@dataclass
class Bench:
    """A repository where dev, staging and prod serve a release, and prod's branch exists."""

    repo: Path
    tmp: Path  # TMPDIR of every releasekit process the test starts
    logs: Path
    database: str | None  # PostgreSQL; None: the repository's DuckDB file
    physical_schema: str
    durations: list[float] = field(default_factory=list)  # normal `promote prod` runs, seconds
    changes: int = 0

    @property
    def store(self) -> LocalStore:
        return LocalStore(self.repo / STATE)

    def entries(self, env: str = "prod") -> list[LedgerEntry]:
        return self.store.entries(env)

    def new_release_on_staging(self) -> str:
        """Commit a change on main, deploy dev, promote it to staging: prod has something new
        to promote (revenue and big_spenders to build). Returns the commit staging serves."""
        self.changes += 1
        model = self.repo / "models" / "revenue.sql"
        model.write_text(model.read_text() + f"-- change {self.changes}\n")
        sha = commit(self.repo, f"change {self.changes}")
        assert api.deploy(Workspace.open(self.repo), "dev").ok
        staged = api.promote(Workspace.open(self.repo), "staging")
        assert staged.deployed is not None and staged.deployed.outcome == "succeeded", staged
        assert staged.commit == sha
        return sha

    def launch(self, args: Sequence[str], out: IO[str]) -> subprocess.Popen[str]:
        """`releasekit *args` as a user would start it, in its own process group."""
        return subprocess.Popen(
            [RELEASEKIT, *args],
            cwd=self.repo,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**cli_env(), "TMPDIR": str(self.tmp)},
            text=True,
            start_new_session=True,
        )

    def run(self, *args: str, timeout: float = 180) -> Run:
        started = time.monotonic()
        result = subprocess.run(
            [RELEASEKIT, *args],
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**cli_env(), "TMPDIR": str(self.tmp)},
        )
        return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def make_bench(tmp_path: Path, database: str | None = None) -> Bench:
    profile = None if database is None else postgres_profile(database)
    repo = make_repo(tmp_path / "repo", FILES, profile=profile)
    assert api.deploy(Workspace.open(repo), "dev").ok
    for env in ("staging", "prod"):
        promoted = api.promote(Workspace.open(repo), env)
        assert promoted.deployed is not None and promoted.deployed.outcome == "succeeded", promoted
    (tmp_path / "tmp").mkdir()
    (tmp_path / "logs").mkdir()
    physical_schema = Workspace.open(repo).config.physical_schema
    return Bench(repo, tmp_path / "tmp", tmp_path / "logs", database, physical_schema)


# --- killing a run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Killed:
    delay: float  # seconds after launch the kill was sent (or the run exited)
    exited_first: int | None  # exit code if the run finished before the kill landed
    triggered: bool  # for aimed kills: what they waited for happened


def kill_after(bench: Bench, args: Sequence[str], delay: float, log: Path) -> Killed:
    """Launch `releasekit *args`, SIGKILL it `delay` seconds after launch, reap it."""
    with log.open("w") as out:
        started = time.monotonic()
        proc = bench.launch(args, out)
        try:
            time.sleep(delay)
            exited_first = proc.poll()
            if exited_first is None:
                _kill(proc)
            proc.wait(timeout=KILL_WAIT)
        finally:
            _reap(proc)
    took = time.monotonic() - started if exited_first is not None else delay
    return Killed(took, exited_first, False)


def kill_when(
    bench: Bench, args: Sequence[str], trigger: Callable[[], bool], log: Path, *, after: float = 0.0
) -> Killed:
    """Launch `releasekit *args` and SIGKILL it `after` seconds after `trigger()` first holds
    (polled in a tight loop); if the run exits first, it is just reaped."""
    with log.open("w") as out:
        started = time.monotonic()
        proc = bench.launch(args, out)
        triggered = False
        try:
            while proc.poll() is None:
                assert time.monotonic() - started < KILL_WAIT, f"releasekit {' '.join(args)} runs too long"
                if trigger():
                    triggered = True
                    if after:
                        time.sleep(after)
                    _kill(proc)
                    break
                time.sleep(0.0002)
            delay = time.monotonic() - started
            proc.wait(timeout=KILL_WAIT)
        finally:
            _reap(proc)
    return Killed(delay, None if triggered else proc.returncode, triggered)


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited between poll and kill
        os.killpg(proc.pid, signal.SIGKILL)  # no handler, no cleanup, no atexit


def _reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        _kill(proc)
        proc.wait()


# --- triggers ---------------------------------------------------------------------------


def branch_moves(repo: Path, branch: str) -> Callable[[], bool]:
    ref = f"refs/heads/{branch}"
    before = rev(repo, ref)
    return lambda: rev(repo, ref) != before


def entry_appears(repo: Path, env: str, outcome: str) -> Callable[[], bool]:
    """A new entry with `outcome` in the environment's ledger folder."""
    folder = repo / STATE / "ledger" / env_key(env)
    seen = set(_entry_files(folder))

    def check() -> bool:
        fresh = sorted(set(_entry_files(folder)) - seen)
        seen.update(fresh)
        # Entries are linked under their final name after fsync: a listed one is complete.
        return any(json.loads((folder / name).read_bytes())["outcome"] == outcome for name in fresh)

    return check


def _entry_files(folder: Path) -> list[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [name for name in names if re.fullmatch(r"[0-9]{8,}\.json", name)]


class DbtCreates:
    """A trigger: dbt logged that it created a model's relation in the physical schema since
    the trigger was made (its log lives in the state folder whatever tree the run reads)."""

    NEEDLE = b" OK created "

    def __init__(self, repo: Path) -> None:
        self.path = repo / STATE / "logs" / "dbt.log"
        self.offset = self._size()
        self.tail = b""

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def __call__(self) -> bool:
        if self._size() < self.offset:  # dbt rotated its log
            self.offset = 0
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                fresh = log.read()
        except FileNotFoundError:
            return False
        self.offset += len(fresh)
        self.tail = (self.tail + fresh)[-4096:]
        return self.NEEDLE in self.tail


@contextlib.contextmanager
def switch_commits(bench: Bench, env: str, schema: str) -> Iterator[Callable[[], bool]]:
    """A trigger, on PostgreSQL: after a new `switching` entry, the marker of `schema` names
    another release (a read that meets the switch's locks returns as it commits). DuckDB
    shows the commit only as the checkpoint after it, which DuckDB itself does not survive
    being killed in (see test_promote_faults), so it has no such trigger."""
    assert bench.database is not None, "the switch commit is aimed at on PostgreSQL only"
    announced = entry_appears(bench.repo, env, "switching")
    pg = Pg(bench.database)
    marker_sql = f"SELECT release_id FROM {qualify(schema, MARKER_VIEW)}"

    def look() -> object:
        try:
            return pg.sql(marker_sql)
        except psycopg2.Error as exc:  # the marker it waited for was replaced: committed
            return str(exc)

    baseline = look()  # the marker before the run starts
    seen: list[bool] = []  # the announcement, once seen (`announced` reports it once)

    def check() -> bool:
        if not seen and announced():
            seen.append(True)
        return bool(seen) and look() != baseline

    try:
        yield check
    finally:
        pg.close()


# --- git ----------------------------------------------------------------------------------


def rev(repo: Path, ref: str) -> str | None:
    probe = ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]
    found = subprocess.run(probe, cwd=repo, capture_output=True, text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def worktrees(repo: Path) -> list[str]:
    """Every worktree git has registered besides the repository's own."""
    listed = git(repo, "worktree", "list", "--porcelain").splitlines()
    paths = [line.removeprefix("worktree ") for line in listed if line.startswith("worktree ")]
    return [path for path in paths if Path(path) != repo]


def temp_worktrees(bench: Bench) -> list[str]:
    return sorted(path.name for path in bench.tmp.glob(f"{WORKTREE_PREFIX}*"))


# --- what the warehouse serves ------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    marker: ReleaseMarker | None
    views: dict[str, str]  # view name -> physical relation (releasekit's parser)
    names: set[str]  # every relation in the schema, marker included
    physical: set[str]
    unreadable: dict[str, str]  # view -> error


def served(bench: Bench, schema: str) -> Served:
    """What consumers of `schema` see now. No releasekit process may run."""
    warehouse = connect(_reader(bench))
    try:
        views = warehouse.view_targets(schema)
        unreadable: dict[str, str] = {}
        for name in sorted(views):
            try:
                warehouse.row_count(schema, name)
            except ReleasekitError as exc:
                unreadable[name] = exc.message
        return Served(
            marker=warehouse.read_marker(schema),
            views=views,
            names=warehouse.relations(schema),
            physical=warehouse.relations(bench.physical_schema),
            unreadable=unreadable,
        )
    finally:
        warehouse.close()


def _reader(bench: Bench) -> Connection:
    if bench.database is not None:
        return postgres_connection(bench.database)
    # Read-only: looking must not checkpoint the WAL a killed run left, so the next run
    # replays it itself, as it would in production.
    settings = {"path": str(bench.repo / "warehouse.duckdb"), "config_options": {"access_mode": "READ_ONLY"}}
    return Connection(type="duckdb", database="warehouse", settings=settings)


def assert_serves_one_release(now: Served, entries: Sequence[LedgerEntry], env: str) -> int:
    """The schema serves exactly one whole release the ledger records; returns its id."""
    assert now.marker is not None, f"{env} has no release marker: {sorted(now.names)}"
    assert now.marker.env == env
    recorded = release_views(entries)
    release = now.marker.release_id
    assert release in recorded, f"{env}'s marker names release {release}, which the ledger does not record"
    assert now.views == recorded[release], f"{env} serves a mix: {now.views} (release {release}: {recorded})"
    assert now.names == set(now.views) | {MARKER_VIEW}, f"stray or unparsed relations in {env}: {now.names}"
    assert set(now.views.values()) <= now.physical, "a view reads a relation that does not exist"
    assert not now.unreadable, now.unreadable
    return release


# --- what the ledger says -----------------------------------------------------------------


def assert_contiguous(entries: Sequence[LedgerEntry]) -> None:
    """Seqs 1..n, and no release id created twice."""
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1)), [e.seq for e in entries]
    created = [e.release_id for e in entries if e.kind == "deploy" and e.outcome == "switching"]
    assert len(created) == len(set(created)), f"release ids announced twice: {created}"
