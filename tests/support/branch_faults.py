"""Helpers for tests/environments/test_branch_faults.py: run `releasekit env ...` as a real
process, kill -9 it at a chosen moment, and read the state folder and the warehouse (the
repository's DuckDB file, or a PostgreSQL database) the way the next run would, while no
releasekit process runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2

from releasekit.config.model import Connection
from releasekit.state.base import BranchEnvironment, LedgerEntry
from releasekit.state.codec import BRANCH_LEDGER_PREFIX, env_key
from releasekit.state.local import LocalStore
from releasekit.warehouse.base import MARKER_VIEW, ReleaseMarker, Warehouse
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.postgres import PostgresWarehouse
from tests.support.cli_runs import RELEASEKIT, Run, cli_env, run_cli
from tests.support.postgres import Pg
from tests.support.warehouse import postgres_connection

STATE = ".releasekit"
TEMP_PREFIX = ".tmp-"
SCHEMAS_SQL = "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database()"
VIEWS_SQL = """
SELECT view_name FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = ? AND NOT internal
"""
PG_VIEWS_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'v'
"""


def store(repo: Path) -> LocalStore:
    return LocalStore(repo / STATE)


# --- running the CLI ------------------------------------------------------------------


def run_ok(repo: Path, *args: str) -> Run:
    run = run_cli(repo, *args)
    assert run.code == 0, f"releasekit {' '.join(args)}: {run.text()}"
    return run


@dataclass(frozen=True)
class Killed:
    delay: float  # seconds after launch the kill was sent (or the process was found dead)
    exited_first: int | None  # exit code if the run finished before the kill landed
    triggered: bool  # for aimed kills: the awaited file appeared


def kill_after(repo: Path, args: Sequence[str], delay: float, log: Path) -> Killed:
    """Launch `releasekit *args`, SIGKILL it `delay` seconds after launch, reap it."""
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            [RELEASEKIT, *args], cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=cli_env()
        )
        try:
            time.sleep(delay)
            exited_first = proc.poll()
            if exited_first is None:
                with contextlib.suppress(ProcessLookupError):  # it exited between poll and kill
                    os.kill(proc.pid, signal.SIGKILL)  # no handler, no cleanup, no atexit
            proc.wait(timeout=60)
        finally:
            _reap(proc)
    return Killed(time.monotonic() - started if exited_first is not None else delay, exited_first, False)


def kill_when(
    repo: Path, args: Sequence[str], trigger: Callable[[], bool], log: Path, *, after: float = 0.0
) -> Killed:
    """Launch `releasekit *args` and SIGKILL it `after` seconds after `trigger()` first holds
    (polled in a tight loop); if the process exits first, it is just reaped."""
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            [RELEASEKIT, *args], cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=cli_env()
        )
        triggered = False
        try:
            while proc.poll() is None:
                assert time.monotonic() - started < 60, f"releasekit {' '.join(args)} runs for 60 s"
                if trigger():
                    triggered = True
                    if after:
                        time.sleep(after)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.0002)
            delay = time.monotonic() - started
            proc.wait(timeout=60)
            exited_first = None if triggered else proc.returncode
        finally:
            _reap(proc)
    return Killed(delay, exited_first, triggered)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# --- triggers: files appearing in the state folder ----------------------------------------


def registry_file(repo: Path, branch: str) -> Path:
    return repo / STATE / "registry" / f"{env_key(branch)}.json"


def ledger_folder(repo: Path, branch: str) -> Path:
    return repo / STATE / "ledger" / (BRANCH_LEDGER_PREFIX + env_key(branch))


def registry_appears(repo: Path, branch: str) -> Callable[[], bool]:
    path = registry_file(repo, branch)
    return path.exists


def registry_temp_appears(repo: Path) -> Callable[[], bool]:
    """A registry record being written: its temp file exists, the rename has not happened."""
    folder = repo / STATE / "registry"
    return lambda: any(name.startswith(TEMP_PREFIX) for name in _list(folder))


def entry_appears(repo: Path, branch: str, outcome: str, kind: str | None = None) -> Callable[[], bool]:
    """A new ledger entry with `outcome` (and `kind`) in the branch's ledger folder."""
    folder = ledger_folder(repo, branch)
    seen = set(_entry_files(folder))

    def check() -> bool:
        fresh = sorted(set(_entry_files(folder)) - seen)
        seen.update(fresh)
        for name in fresh:
            document = json.loads((folder / name).read_bytes())  # linked after fsync: complete
            if document["outcome"] == outcome and kind in (None, document["kind"]):
                return True
        return False

    return check


def _entry_files(folder: Path) -> list[str]:
    return [name for name in _list(folder) if re.fullmatch(r"[0-9]{8,}\.json", name)]


def _list(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def temp_files(repo: Path) -> list[str]:
    """Temp files a killed writer left anywhere in the state folder (dbt's folder aside)."""
    root = repo / STATE
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob(f"{TEMP_PREFIX}*")
        if path.is_file() and "dbt" not in path.relative_to(root).parts[:1]
    )


# --- what the state folder says -----------------------------------------------------------


@dataclass(frozen=True)
class StateView:
    record: BranchEnvironment | None
    entries: list[LedgerEntry]  # the branch's ledger
    registered: list[BranchEnvironment]  # every registry record
    dev_entries: list[LedgerEntry]


def read_state(repo: Path, branch: str) -> StateView:
    """Everything the next run reads; any StateError here means it does not read cleanly."""
    state = store(repo)
    registered = state.branches()
    scan = state.scan_ledgers()
    assert not scan.unreadable, scan.unreadable
    # By folder, not by name: once torn down, a branch has no registry record that would
    # lead `entries` to its namespace, and its ledger is still what the next run reads.
    entries = scan.branches.get(branch, [])
    return StateView(state.branch(branch), entries, registered, state.entries("dev"))


# --- what the warehouse serves ------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    schemas: set[str]
    marker: ReleaseMarker | None  # of the branch schema
    views: dict[str, str]  # branch view name -> physical relation (releasekit's parser)
    view_names: set[str]  # every view in the branch schema, marker included
    dev_marker: ReleaseMarker | None
    dev_views: dict[str, str]
    physical: set[str]
    unreadable: dict[str, str]  # "schema.view" -> error, for views of the branch and of dev


def read_only(repo: Path) -> Connection:
    # Read-only: looking must not checkpoint the WAL a killed run left, so the next run
    # replays it itself, as it would in production.
    path = str(repo / "warehouse.duckdb")
    settings = {"path": path, "config_options": {"access_mode": "READ_ONLY"}}
    return Connection(type="duckdb", database="warehouse", settings=settings)


def served(repo: Path, schema: str, physical_schema: str, database: str | None = None) -> Served:
    """What consumers of the branch schema and of dev see now: in the repository's DuckDB
    file, or in the PostgreSQL `database` when one is named. No releasekit process may run."""
    if database is not None:
        return _served_postgres(database, schema, physical_schema)
    with DuckDBWarehouse(read_only(repo)) as warehouse:
        seen = _through(warehouse, schema, physical_schema)
    con = duckdb.connect(str(repo / "warehouse.duckdb"), read_only=True)
    try:
        schemas = {str(name) for (name,) in con.execute(SCHEMAS_SQL).fetchall()}
        view_names = {str(name) for (name,) in con.execute(VIEWS_SQL, [schema]).fetchall()}

        def select(statement: str) -> None:
            con.execute(statement).fetchall()

        unreadable = _unreadable(select, duckdb.Error, schema, view_names, seen.dev_views)
    finally:
        con.close()
    return dataclasses.replace(seen, schemas=schemas, view_names=view_names, unreadable=unreadable)


def _served_postgres(database: str, schema: str, physical_schema: str) -> Served:
    with PostgresWarehouse(postgres_connection(database)) as warehouse:
        seen = _through(warehouse, schema, physical_schema)
    pg = Pg(database)
    try:
        view_names = {str(name) for (name,) in pg.sql(PG_VIEWS_SQL, (schema,))}
        unreadable = _unreadable(pg.sql, psycopg2.Error, schema, view_names, seen.dev_views)
        schemas = pg.schemas()
    finally:
        pg.close()
    return dataclasses.replace(seen, schemas=schemas, view_names=view_names, unreadable=unreadable)


def _through(warehouse: Warehouse, schema: str, physical_schema: str) -> Served:
    """What releasekit's own adapter reads; the rest is filled in by the caller."""
    return Served(
        schemas=set(),
        marker=warehouse.read_marker(schema),
        views=warehouse.view_targets(schema),
        view_names=set(),
        dev_marker=warehouse.read_marker("dev"),
        dev_views=warehouse.view_targets("dev"),
        physical=warehouse.relations(physical_schema),
        unreadable={},
    )


def _unreadable(
    select: Callable[[str], object],
    error: type[Exception],
    schema: str,
    view_names: set[str],
    dev_views: dict[str, str],
) -> dict[str, str]:
    unreadable: dict[str, str] = {}
    for where, names in ((schema, view_names - {MARKER_VIEW}), ("dev", set(dev_views))):
        for name in sorted(names):
            try:
                select(f"SELECT count(*) FROM {qualify(where, name)}")
            except error as exc:
                unreadable[f"{where}.{name}"] = str(exc).splitlines()[0]
    return unreadable
