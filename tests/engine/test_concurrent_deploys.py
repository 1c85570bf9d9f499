"""Deploys of different environments of one commit, started together as real `releasekit`
processes, with `releasekit gc` running beside them: dev, prod and two branch
environments, on PostgreSQL and on DuckDB, a few rounds, each round a new commit.

The environments share physical relations (the branch environments read and build like
dev; prod differs only where its vars reach), so every round several runs want the same
new relation at once. On PostgreSQL every run succeeds and every environment then serves
the commit, whole, with every view selecting. On DuckDB (one writing process per file)
each run either succeeds or stops at once with exit 2 naming the process holding the
file, and every environment serves a whole release whose views all select.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import tests.support.warehouse_reads as warehouse_reads
from tests.support.cli_runs import RELEASEKIT, cli_env
from tests.support.postgres import Pg, fresh_database, postgres_profile
from tests.support.projects import branch_here, commit, git, make_repo, write_files

pytestmark = pytest.mark.integration

BRANCHES = ("feature/a", 'fix/"b";c')
DECLARED = ("dev", "prod")
ROUNDS = 2  # the default suite; the stress variants run STRESS_ROUNDS
STRESS_ROUNDS = 8
PROCESS_TIMEOUT = 600


def _start(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RELEASEKIT, *args],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def _run(repo: Path, *args: str) -> None:
    done = subprocess.run(
        [RELEASEKIT, *args], cwd=repo, capture_output=True, text=True, env=cli_env(), timeout=PROCESS_TIMEOUT
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def _prepare(repo: Path) -> None:
    branch_here(repo)  # prod deploys only its branch head, as after a promotion
    for env in DECLARED:
        _run(repo, "deploy", env)
    for branch in BRANCHES:
        git(repo, "branch", branch)
        _run(repo, "env", "up", branch)


def _round(repo: Path, number: int) -> tuple[str, dict[str, tuple[int, str]]]:
    """Commit a change every model but the seed and stg_orders depends on, then deploy
    every environment and gc at once. Returns the commit and each run's (exit, output)."""
    sql = f"-- round {number}\nselect 1 as customer_id, 'ann' as name union all select 2, 'bob'\n"
    write_files(repo, {"models/stg_customers.sql": sql})
    sha = commit(repo, f"round {number}")
    branch_here(repo)
    runs = {env: _start(repo, "deploy", env) for env in (*DECLARED, *BRANCHES)}
    runs["gc"] = _start(repo, "gc")
    results = {}
    for name, process in runs.items():
        out, err = process.communicate(timeout=PROCESS_TIMEOUT)
        results[name] = (process.returncode, f"{out}\n{err}")
    return sha, results


def _schemas(repo: Path) -> dict[str, str]:
    from releasekit.api import Workspace

    workspace = Workspace.open(repo)
    found = {env: workspace.config.environment(env).schema for env in DECLARED}
    found.update({branch: workspace.environment(branch).schema for branch in BRANCHES})
    return found


def _text(results: dict[str, tuple[int, str]]) -> str:
    return "\n".join(f"--- {name}: exit {code}\n{text}" for name, (code, text) in results.items())


@pytest.mark.slow
def test_concurrent_deploys_and_gc_on_postgres_all_succeed(tmp_path: Path) -> None:
    _postgres_rounds(tmp_path, ROUNDS)


@pytest.mark.stress
def test_many_rounds_of_concurrent_deploys_and_gc_on_postgres(tmp_path: Path) -> None:
    _postgres_rounds(tmp_path, STRESS_ROUNDS)


def _postgres_rounds(tmp_path: Path, rounds: int) -> None:
    with fresh_database() as database:
        repo = make_repo(tmp_path / "repo", profile=postgres_profile(database, threads=2))
        pg = Pg(database)
        try:
            _prepare(repo)
            schemas = _schemas(repo)
            for number in range(rounds):
                sha, results = _round(repo, number)
                assert all(code == 0 for code, _ in results.values()), _text(results)
                for env, schema in schemas.items():
                    _, marker_env, marker_sha = pg.marker(schema)
                    assert (marker_env, marker_sha) == (env, sha), _text(results)
                    assert set(pg.views(schema)) >= {"orders", "customers", "revenue"}
                    assert set(pg.views(schema).values()) <= pg.physical()
                    pg.every_view_selects(schema)
        finally:
            pg.close()


def _duckdb_views_select(repo: Path, schema: str) -> None:
    views = warehouse_reads.views(repo, schema)
    physical = warehouse_reads.physical(repo)
    assert views and set(views.values()) <= physical, (schema, views, physical)
    for view in views:
        warehouse_reads.sql(repo, f'select * from {schema}."{view}"')


@pytest.mark.slow
def test_concurrent_deploys_and_gc_on_duckdb_succeed_or_fail_fast_naming_the_holder(tmp_path: Path) -> None:
    _duckdb_rounds(tmp_path, ROUNDS)


@pytest.mark.stress
def test_many_rounds_of_concurrent_deploys_and_gc_on_duckdb(tmp_path: Path) -> None:
    _duckdb_rounds(tmp_path, STRESS_ROUNDS)


def _duckdb_rounds(tmp_path: Path, rounds: int) -> None:
    repo = make_repo(tmp_path / "repo")
    _prepare(repo)
    schemas = _schemas(repo)
    for number in range(rounds):
        _, results = _round(repo, number)
        for code, text in results.values():
            assert code in (0, 2), _text(results)
            if code == 2:
                assert "is held by" in " ".join(text.split()), _text(results)  # however it wraps
        for env, schema in schemas.items():
            _, marker_env, _ = warehouse_reads.marker(repo, schema)
            assert marker_env == env
            _duckdb_views_select(repo, schema)
