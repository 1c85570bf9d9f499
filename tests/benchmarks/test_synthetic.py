from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.postgres import server

from .synthetic import PG_HOST, PG_PORT, PG_USER, SyntheticProject, drop_postgres_database, generate_project

DBT = Path(sys.executable).parent / "dbt"


def _dbt_build(project: SyntheticProject, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [str(DBT), "build", "--profiles-dir", ".", *extra],
        cwd=project.project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _model_files(project: SyntheticProject) -> dict[str, str]:
    return {name: project.model_path(name).read_text() for name in project.models}


def test_layers_hold_the_requested_models_in_a_layered_dag(tmp_path: Path) -> None:
    project = generate_project(tmp_path, models=200, rows=1000)

    assert len(project.models) == len(set(project.models)) == 200
    assert len(project.layers) == 6
    assert all(project.parents[name] == () for name in project.layers[0])
    for depth, layer in enumerate(project.layers[1:], start=2):
        for name in layer:
            parent_layers = [project.layer_of(parent) for parent in project.parents[name]]
            assert 1 <= len(parent_layers) <= 3
            assert max(parent_layers) == depth - 1  # so the model sits exactly at this depth
            sql = project.model_path(name).read_text()
            assert all(f"ref('{parent}')" in sql for parent in project.parents[name])


def test_generation_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = generate_project(tmp_path / "a", models=40, rows=1000, seed=5)
    second = generate_project(tmp_path / "b", models=40, rows=1000, seed=5)
    other = generate_project(tmp_path / "c", models=40, rows=1000, seed=6)

    assert first.parents == second.parents
    assert _model_files(first) == _model_files(second)
    assert _model_files(first) != _model_files(other)


@pytest.mark.parametrize(("models", "bound"), [(200, 5), (200, 2), (20, 5)])
def test_pick_mid_model_respects_the_descendant_bound(tmp_path: Path, models: int, bound: int) -> None:
    project = generate_project(tmp_path, models=models, rows=1000)

    mid = project.pick_mid_model(max_descendants=bound)
    assert 1 <= len(project.descendants(mid)) <= bound
    assert 1 < project.layer_of(mid) < len(project.layers)


def test_edit_model_changes_the_sql_every_time(tmp_path: Path) -> None:
    project = generate_project(tmp_path, models=20, rows=1000)
    mid = project.pick_mid_model()
    original = project.model_path(mid).read_text()

    project.edit_model(mid)
    once = project.model_path(mid).read_text()
    project.edit_model(mid)

    assert original != once != project.model_path(mid).read_text()


def test_refuses_to_generate_over_a_project(tmp_path: Path) -> None:
    generate_project(tmp_path, models=10, rows=100)

    with pytest.raises(FileExistsError):
        generate_project(tmp_path, models=10, rows=100)


@pytest.mark.slow
@pytest.mark.integration
def test_small_project_builds_and_a_mid_model_edit_rebuilds(tmp_path: Path) -> None:
    project = generate_project(tmp_path, models=20, rows=10_000)

    full = _dbt_build(project)
    assert full.returncode == 0, full.stdout[-3000:]
    mid = project.pick_mid_model()
    project.edit_model(mid)
    partial = _dbt_build(project, "--select", f"{mid}+")
    assert partial.returncode == 0, partial.stdout[-3000:]


def _postgres_rows(database: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=3
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A name for a database generate_project creates; dropped afterwards."""
    with server():  # skips without a server, fails under CI
        pass
    name = f"rk_synth_{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        drop_postgres_database(name)


_POSTGRES_DAY = "(cast(ts as date) - date '2024-01-01')"
_DUCKDB_DAY = "datediff('day', date '2024-01-01', ts)"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.postgres
def test_small_postgres_project_matches_duckdb_and_builds(tmp_path: Path, postgres_database: str) -> None:
    rows = 10_000
    project = generate_project(
        tmp_path / "pg", models=20, rows=rows, warehouse="postgres", database=postgres_database
    )
    twin = generate_project(tmp_path / "duck", models=20, rows=rows)

    # Same DAG and models; the SQL differs only in the day number PostgreSQL spells without datediff.
    assert project.parents == twin.parents
    pg_models = _model_files(project)
    assert any(_POSTGRES_DAY in sql for sql in pg_models.values())
    assert {name: sql.replace(_POSTGRES_DAY, _DUCKDB_DAY) for name, sql in pg_models.items()} == _model_files(
        twin
    )
    assert not project.db_path.exists()
    assert f"dbname: {postgres_database}" in (project.project_dir / "profiles.yml").read_text()

    # Same columns, types and value ranges as DuckDB's raw table.
    columns = _postgres_rows(
        postgres_database,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'events' order by ordinal_position",
    )
    with duckdb.connect(str(twin.db_path), read_only=True) as connection:
        duck_columns = connection.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'events' order by ordinal_position"
        ).fetchall()
    assert [name for name, _ in columns] == [name for name, _ in duck_columns]
    assert [kind for _, kind in columns] == [
        "bigint",
        "bigint",
        "text",
        "numeric",
        "timestamp without time zone",
    ]
    summary = "count(*), count(distinct id), min(user_id), max(user_id), count(distinct event_type), "
    summary += "min(amount), max(amount), min(ts) >= '2024-01-01', max(ts) < '2024-12-31'"
    ((count, ids, low_user, high_user, types, low, high, ts_from, ts_to),) = _postgres_rows(
        postgres_database, f"select {summary} from raw.events"
    )
    assert (count, ids, low_user, types, ts_from, ts_to) == (rows, rows, 0, 5, True, True)
    assert high_user < 100 and low >= 0 and high < 1000

    full = _dbt_build(project)
    assert full.returncode == 0, full.stdout[-3000:]
    mid = project.pick_mid_model()
    project.edit_model(mid)
    partial = _dbt_build(project, "--select", f"{mid}+")
    assert partial.returncode == 0, partial.stdout[-3000:]


@pytest.mark.postgres
def test_refuses_a_postgres_database_that_holds_raw_events(tmp_path: Path, postgres_database: str) -> None:
    generate_project(tmp_path / "a", models=10, rows=100, warehouse="postgres", database=postgres_database)

    with pytest.raises(FileExistsError):
        generate_project(
            tmp_path / "b", models=10, rows=100, warehouse="postgres", database=postgres_database
        )
    assert not (tmp_path / "b").exists()
