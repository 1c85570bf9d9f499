"""20 branch environments at once: 20 `releasekit env up` processes started together
against a deployed dev, then 20 `env down` together, on DuckDB and on PostgreSQL.

Every process exits 0; in between the registry holds exactly the 20 and the warehouse
exactly their 20 schemas (each serving dev's release); afterwards neither holds any, no
staging schema is left, and dev (views, marker, ledger, physical relations) is untouched.

On DuckDB one process may have the file open at a time: `env up/down` wait their turn and
say who holds it ("waiting: ... is held by process N"). On PostgreSQL they run side by
side and none waits. Run with -s for wall and per-process times.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

import tests.support.warehouse_reads as warehouse_reads
from releasekit import api
from releasekit.api import Workspace
from releasekit.state.base import LedgerEntry
from tests.support.postgres import Pg, fresh_database, postgres_profile
from tests.support.projects import git, make_repo

pytestmark = pytest.mark.integration

N = 20
BRANCHES = [f"b-{i}" for i in range(N)]
PREFIX = "br_"
RELEASEKIT = str(Path(sys.executable).with_name("releasekit"))
# A safety net beyond DuckDB's own queue limit (api.BRANCH_WAIT_SECONDS, 120 s): a process
# that gives up waiting says so itself.
PROCESS_TIMEOUT = 150.0


class Reads(Protocol):
    """What the test reads of a warehouse, between runs (DuckDB: no process holds it)."""

    def schemas(self) -> set[str]: ...
    def views(self, schema: str) -> dict[str, str]: ...
    def marker(self, schema: str) -> tuple[Any, ...]: ...
    def physical(self) -> set[str]: ...


class DuckDBReads:
    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def schemas(self) -> set[str]:
        rows = warehouse_reads.sql(
            self.repo, "select schema_name from duckdb_schemas() where database_name = current_database()"
        )
        return {name for (name,) in rows}

    def views(self, schema: str) -> dict[str, str]:
        return warehouse_reads.views(self.repo, schema)

    def marker(self, schema: str) -> tuple[Any, ...]:
        return warehouse_reads.marker(self.repo, schema)

    def physical(self) -> set[str]:
        return warehouse_reads.physical(self.repo)


@dataclass(frozen=True)
class Run:
    branch: str
    code: int
    output: str  # stdout and stderr, whitespace collapsed (the terminal wraps long lines)
    seconds: float  # wall time, start to exit
    cpu: float  # user + system seconds the process used


def cli_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELEASEKIT_")}
    env |= {"NO_COLOR": "1", "RELEASEKIT_SKIP_HOOKS": "1", "COLUMNS": "200"}
    return env


def _finish(branch: str, process: subprocess.Popen[str], start: float) -> Run:
    """Read the process's output to the end, then reap it with its resource usage."""
    killer = threading.Timer(PROCESS_TIMEOUT, process.kill)
    killer.start()
    try:
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    seconds = time.monotonic() - start
    if seconds >= PROCESS_TIMEOUT:
        output += f"\n[killed after {PROCESS_TIMEOUT} s]"
    text = " ".join(output.split())
    return Run(branch, process.returncode, text, seconds, usage.ru_utime + usage.ru_stime)


def run_at_once(repo: Path, *args: str) -> tuple[list[Run], float]:
    """Start `releasekit env <args> <branch>` for every branch at once; wait for them all.
    Returns each run and the wall time from the first start to the last exit."""
    env = cli_env()
    started = time.monotonic()
    processes = [
        (
            branch,
            subprocess.Popen(
                [RELEASEKIT, "env", *args, branch],
                cwd=repo,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
            time.monotonic(),
        )
        for branch in BRANCHES
    ]
    runs: list[Run | None] = [None] * N

    def reap(i: int) -> None:
        runs[i] = _finish(*processes[i])

    reapers = [threading.Thread(target=reap, args=(i,)) for i in range(N)]
    for reaper in reapers:
        reaper.start()
    for reaper in reapers:
        reaper.join()
    wall = time.monotonic() - started
    done = [run for run in runs if run is not None]
    assert len(done) == N
    return done, wall


def single_run_seconds(repo: Path) -> float:
    """One `releasekit env list`: what starting a releasekit process costs here."""
    start = time.monotonic()
    subprocess.run([RELEASEKIT, "env", "list"], cwd=repo, env=cli_env(), check=True, capture_output=True)
    return time.monotonic() - start


@dataclass(frozen=True)
class Base:
    views: dict[str, str]
    marker: tuple[Any, ...]
    physical: set[str]
    ledger: list[LedgerEntry]


def base_state(repo: Path, reads: Reads) -> Base:
    return Base(
        reads.views("dev"), reads.marker("dev"), reads.physical(), api.releases(Workspace.open(repo), "dev")
    )


def describe(label: str, runs: list[Run], wall: float, waited: int) -> str:
    seconds, cpu = [run.seconds for run in runs], [run.cpu for run in runs]
    per_process = (
        f"wall median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s, "
        f"CPU median {statistics.median(cpu):.2f} s, total {sum(cpu):.1f} s"
    )
    return f"{label}: {N} processes, wall {wall:.2f} s; per process: {per_process}; {waited} waited"


def waited(runs: list[Run]) -> list[Run]:
    return [run for run in runs if "waiting:" in run.output]


def up_and_down_at_once(repo: Path, reads: Reads, label: str) -> tuple[list[Run], list[Run]]:
    """The scenario; returns the up runs and the down runs for backend-specific checks."""
    for branch in BRANCHES:
        git(repo, "branch", branch)
    base = base_state(repo, reads)
    schemas_before = reads.schemas()
    assert not {s for s in schemas_before if s.startswith(PREFIX)}
    one = single_run_seconds(repo)
    cpus = os.cpu_count()

    ups, up_wall = run_at_once(repo, "up")

    failed = [run for run in ups if run.code != 0]
    assert not failed, f"{len(failed)} env up failed, first: {failed[0].branch}: {failed[0].output}"
    assert all("is up in schema" in run.output for run in ups)
    statuses = api.env_list(Workspace.open(repo))
    assert sorted(s.record.branch for s in statuses) == sorted(BRANCHES)
    recorded = {s.record.schema for s in statuses}
    assert len(recorded) == N
    made = reads.schemas() - schemas_before
    assert made == recorded and all(schema.startswith(PREFIX) for schema in made)
    for status in statuses:
        assert reads.views(status.record.schema) == base.views
        assert reads.marker(status.record.schema)[1:] == (status.record.branch, base.marker[2])
        assert status.live_release == 1 and status.record.base_release == base.marker[0]
    assert base_state(repo, reads) == base

    downs, down_wall = run_at_once(repo, "down")

    failed = [run for run in downs if run.code != 0]
    assert not failed, f"{len(failed)} env down failed, first: {failed[0].branch}: {failed[0].output}"
    assert all("dropped" in run.output for run in downs)
    assert api.env_list(Workspace.open(repo)) == []
    assert reads.schemas() == schemas_before  # no branch schema, no staging schema left
    assert base_state(repo, reads) == base

    print(
        f"\n{describe(label + ' env up', ups, up_wall, len(waited(ups)))}"
        f"\n{describe(label + ' env down', downs, down_wall, len(waited(downs)))}"
        f"\n{label}: one `releasekit env list` alone took {one:.2f} s ({cpus} CPUs)"
    )
    for run in waited(ups)[:1]:
        print(f"{label}: e.g. {run.branch}: {run.output[:400]}")
    return ups, downs


@pytest.mark.slow
def test_20_branch_environments_at_once_on_duckdb(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert api.deploy(Workspace.open(repo), "dev").ok

    ups, downs = up_and_down_at_once(repo, DuckDBReads(repo), "DuckDB")

    # One process at a time: the others queued, and said for whom.
    for runs in (ups, downs):
        queued = waited(runs)
        assert queued, "no process had to wait for the DuckDB file"
        assert all(re.search(r"waiting: .* is held by process \d+", run.output) for run in queued)


@pytest.fixture
def postgres_repo(tmp_path: Path) -> Iterator[tuple[Path, Pg]]:
    with fresh_database() as database:
        repo = make_repo(tmp_path / "repo", profile=postgres_profile(database))
        with contextlib.closing(Pg(database)) as pg:
            yield repo, pg


@pytest.mark.slow
@pytest.mark.postgres
def test_20_branch_environments_at_once_on_postgres(postgres_repo: tuple[Path, Pg]) -> None:
    repo, pg = postgres_repo
    assert api.deploy(Workspace.open(repo), "dev").ok

    def connections() -> int:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        return int(pg.sql(sql)[0][0])

    before = connections()

    ups, downs = up_and_down_at_once(repo, pg, "PostgreSQL")

    assert not waited(ups) and not waited(downs)  # side by side: nobody queues
    deadline = time.monotonic() + 10
    while connections() > before and time.monotonic() < deadline:
        time.sleep(0.1)  # a backend ends a moment after its client
    assert connections() == before  # every process closed its connection
