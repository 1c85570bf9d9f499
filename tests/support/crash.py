"""Helpers for tests/engine/test_crash_safety.py: run the CLI as a real process, look at
the warehouse and the ledger while no releasekit process runs, and check that the
environment serves exactly one whole release the ledger recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from releasekit.config.model import Connection
from releasekit.state.base import LedgerEntry
from releasekit.state.local import LocalStore
from releasekit.warehouse.base import MARKER_VIEW, ReleaseMarker
from releasekit.warehouse.duckdb import DuckDBWarehouse
from releasekit.warehouse.naming import qualify
from tests.support.cli_runs import RELEASEKIT, Run, cli_env, run_cli
from tests.support.ledger_checks import release_views

ENV = "dev"
SCHEMA = "dev"
SETTLED = ("succeeded", "abandoned")

# A releasekit view reads `select * from <physical schema>.<relation>`; DuckDB stores it
# re-rendered, quoting identifiers only when needed.
_IDENT = r'(?:"(?:[^"]|"")*"|[^\W\d][\w$]*)'
_VIEW_TARGET = re.compile(
    rf"\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+.*?\s+AS\s+SELECT\s+\*\s+FROM\s+"
    rf"(?:{_IDENT}\.)?(?P<schema>{_IDENT})\.(?P<relation>{_IDENT})\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
)
VIEWS_SQL = """
SELECT view_name, sql FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = ? AND NOT internal
"""


def database(repo: Path) -> Path:
    return repo / "warehouse.duckdb"


def store(repo: Path) -> LocalStore:
    return LocalStore(repo / ".releasekit")


def entries(repo: Path) -> list[LedgerEntry]:
    return store(repo).entries(ENV)


def head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


# --- running the CLI ------------------------------------------------------------------


def deploy(repo: Path, timeout: float = 180) -> Run:
    return run_cli(repo, "deploy", ENV, timeout=timeout)


def deploy_ok(repo: Path) -> Run:
    run = deploy(repo)
    assert run.code == 0, f"deploy exited {run.code}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    return run


@dataclass(frozen=True)
class Killed:
    delay: float  # seconds after launch the kill was sent
    exited_first: int | None  # exit code if the deploy finished before the kill landed


def deploy_and_kill(repo: Path, delay: float, log: Path, *, command: str = "deploy") -> Killed:
    """Launch `releasekit deploy dev` (or `command` dev), SIGKILL it `delay` seconds after
    launch, reap it."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [RELEASEKIT, command, ENV], cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=cli_env()
        )
        try:
            time.sleep(delay)
            exited_first = proc.poll()
            if exited_first is None:
                with contextlib.suppress(ProcessLookupError):  # it exited between poll and kill
                    os.kill(proc.pid, signal.SIGKILL)  # no handler, no cleanup, no atexit
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Killed(delay, exited_first)


def deploy_and_kill_on_entry(
    repo: Path, outcome: str, log: Path, *, after: float = 0.0, timeout: float = 120, command: str = "deploy"
) -> Killed:
    """Launch `releasekit deploy dev` (or `command` dev) and SIGKILL it `after` seconds after the ledger gains
    an entry with `outcome` (0 and "switching": after announcing the switch, before making it;
    the switch and its `succeeded` entry follow within some 30-50 ms)."""
    folder = repo / ".releasekit" / "ledger" / ENV
    seen = set(_entry_files(folder))
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            [RELEASEKIT, command, ENV], cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=cli_env()
        )
        killed = False
        try:
            while not killed and proc.poll() is None:
                assert time.monotonic() - started < timeout, f"no {outcome!r} entry within {timeout} s"
                fresh = sorted(set(_entry_files(folder)) - seen)
                if any(_outcome(folder / name) == outcome for name in fresh):
                    time.sleep(after)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    killed = True
                seen.update(fresh)
                time.sleep(0.0005)
            delay = time.monotonic() - started
            exited_first = None if killed else proc.poll()
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Killed(delay, exited_first)


def _entry_files(folder: Path) -> list[str]:
    try:
        return [name for name in os.listdir(folder) if re.fullmatch(r"[0-9]{8,}\.json", name)]
    except FileNotFoundError:
        return []


def _outcome(path: Path) -> str:
    # Entries appear by hard link after an fsync: a listed entry is complete.
    return str(json.loads(path.read_bytes())["outcome"])


# --- what the warehouse serves ---------------------------------------------------------


@dataclass(frozen=True)
class Served:
    marker: ReleaseMarker | None
    views: dict[str, str]  # view name -> physical relation (releasekit's parser)
    view_names: set[str]  # every view in the schema, marker included
    physical: set[str]  # relations in the physical schema
    counts: dict[str, int]  # view name -> select count(*)


def read_only(repo: Path) -> Connection:
    # Read-only: looking must not checkpoint the WAL a killed run left, so the rerun
    # replays it itself, as it would in production.
    settings = {"path": str(database(repo)), "config_options": {"access_mode": "READ_ONLY"}}
    return Connection(type="duckdb", database="warehouse", settings=settings)


def served(repo: Path, physical_schema: str) -> Served:
    """Everything a consumer of the dev schema would see now. No releasekit process may run."""
    with DuckDBWarehouse(read_only(repo)) as warehouse:
        marker = warehouse.read_marker(SCHEMA)
        views = warehouse.view_targets(SCHEMA)
        physical = warehouse.relations(physical_schema)
    con = duckdb.connect(str(database(repo)), read_only=True)
    try:
        view_names = {str(name) for name, _ in con.execute(VIEWS_SQL, [SCHEMA]).fetchall()}
        counts = {
            name: int(con.execute(f"SELECT count(*) FROM {qualify(SCHEMA, name)}").fetchall()[0][0])
            for name in sorted(view_names - {MARKER_VIEW})
        }
    finally:
        con.close()
    return Served(marker, views, view_names, physical, counts)


def view_target(sql: str) -> tuple[str, str] | None:
    """(schema, relation) a releasekit view reads, from DuckDB's stored view SQL."""
    match = _VIEW_TARGET.fullmatch(sql)
    if match is None:
        return None
    return _unquote(match["schema"]), _unquote(match["relation"])


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


# --- what the ledger recorded ----------------------------------------------------------


def release_sha(all_entries: Sequence[LedgerEntry], release_id: int) -> str:
    shas = {e.git_sha for e in all_entries if e.release_id == release_id and e.kind == "deploy"}
    assert len(shas) == 1, f"release {release_id}: git shas {shas}"
    return shas.pop()


def physical_schema_of(all_entries: Sequence[LedgerEntry]) -> str:
    schemas = {e.physical_schema for e in all_entries}
    assert len(schemas) == 1, schemas
    return schemas.pop()


def assert_serves_one_release(repo: Path) -> tuple[Served, list[LedgerEntry]]:
    """The dev schema serves exactly one whole release recorded in a readable ledger."""
    all_entries = entries(repo)  # raises StateError if the ledger does not read cleanly
    assert store(repo).environments() == [ENV]
    now = served(repo, physical_schema_of(all_entries))
    assert now.marker is not None, "the dev schema has no release marker"
    assert now.marker.env == ENV
    recorded = release_views(all_entries)
    release_id = now.marker.release_id
    assert release_id in recorded, (
        f"the marker names release {release_id}, which no switching/succeeded entry records"
    )
    assert now.marker.git_sha == release_sha(all_entries, release_id)
    assert now.views == recorded[release_id], (
        f"dev serves a mix: views {now.views} but release {release_id} is {recorded[release_id]}"
    )
    assert now.view_names == set(recorded[release_id]) | {MARKER_VIEW}, "stray or unparsed views"
    missing = set(now.views.values()) - now.physical
    assert not missing, f"views point at relations that do not exist: {missing}"
    assert set(now.counts) == set(now.views)  # every view answered select count(*)
    return now, all_entries


def count_by(items: Mapping[str, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(items.items(), key=lambda kv: -kv[1]))
