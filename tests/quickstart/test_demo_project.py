from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import duckdb
import pytest

from releasekit.errors import ReleasekitError
from releasekit.quickstart.demo import (
    DEMO_CHANGE,
    DEMO_VAR,
    DEMO_VAR_READERS,
    RAW_SCHEMA,
    SEEDS,
    SOURCES,
    DemoProject,
    RawLoad,
    load_raw,
    write_demo_project,
)

DBT = Path(sys.executable).parent / "dbt"
SMALL = 400  # orders: enough for every status and tier to show up, quick to seed


def _seed_bytes(project_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((project_dir / "seeds").glob("*.csv"))}


def _dbt_build(project_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [str(DBT), "build", "--profiles-dir", ".", *extra],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _scalar(database: Path, sql: str) -> float:
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute(sql).fetchone()
    assert row is not None
    return float(row[0])


def _loads(project: DemoProject) -> tuple[RawLoad, ...]:
    return (project.history, project.new_day, project.bad_day)


def _apply_demo_change(project_dir: Path) -> None:
    relative, old, new = DEMO_CHANGE
    path = project_dir / relative
    path.write_text(path.read_text().replace(old, new))


def test_writes_a_project_with_models_macro_and_profile(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path / "demo", rows=SMALL)

    models = sorted(path.stem for path in (project.project_dir / "models").rglob("*.sql"))
    assert len(models) >= 8
    assert sorted(project.models) == models
    assert (project.project_dir / "macros" / "cents_to_dollars.sql").is_file()
    assert project.profiles_path.read_text().count("type: duckdb") == 1
    assert "path: warehouse.duckdb" in project.profiles_path.read_text()
    assert project.database_path == project.project_dir / "warehouse.duckdb"
    assert f"{DEMO_VAR}: true" in (project.project_dir / "dbt_project.yml").read_text()


def test_copies_every_template_file_including_dotfiles(tmp_path: Path) -> None:
    template = Path(str(files("releasekit.resources") / "demo"))
    expected = {
        path.relative_to(template)
        for path in template.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    project = write_demo_project(tmp_path, rows=SMALL)

    written = {path.relative_to(project.project_dir) for path in tmp_path.rglob("*")}
    assert expected <= written
    assert {Path(".gitignore"), Path(".sqlfluff")} <= expected
    assert "*.duckdb" in (tmp_path / ".gitignore").read_text().splitlines()


def test_seeds_are_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = write_demo_project(tmp_path / "a", rows=SMALL, seed=3)
    second = write_demo_project(tmp_path / "b", rows=SMALL, seed=3)
    other = write_demo_project(tmp_path / "c", rows=SMALL, seed=4)

    assert set(_seed_bytes(first.project_dir)) == {f"{name}.csv" for name in SEEDS}
    assert _seed_bytes(first.project_dir) == _seed_bytes(second.project_dir)
    assert _seed_bytes(first.project_dir) != _seed_bytes(other.project_dir)


def test_raw_loads_are_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = write_demo_project(tmp_path / "a", rows=SMALL, seed=3)
    second = write_demo_project(tmp_path / "b", rows=SMALL, seed=3)
    other = write_demo_project(tmp_path / "c", rows=SMALL, seed=4)

    assert _loads(first) == _loads(second)
    assert first.history != other.history and first.new_day != other.new_day


def test_orders_follow_the_rows_argument(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, rows=SMALL)

    assert project.history.rows("orders") == SMALL
    assert not (project.project_dir / "seeds" / "raw_orders.csv").exists()  # a source, not a seed


def test_the_new_day_goes_on_from_the_history_and_the_bad_day_repeats_some_of_it(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, rows=SMALL)
    new_orders = project.new_day.tables["orders"]

    assert [row[0] for row in new_orders] == list(range(SMALL + 1, SMALL + 1 + len(new_orders)))
    assert {str(row[2])[:10] for row in new_orders} == {str(project.new_day.day)}
    assert project.bad_day.day is not None and project.new_day.day is not None
    assert project.bad_day.day > project.new_day.day
    assert project.replayed_orders and set(project.replayed_orders) <= {row[0] for row in new_orders}
    for load in _loads(project):  # every item and payment belongs to an order of its load
        ids = {row[0] for row in load.tables["orders"]}
        assert {row[1] for row in (*load.tables["order_items"], *load.tables["payments"])} <= ids


def test_loads_append_to_the_raw_tables(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, rows=SMALL)

    load_raw(project, project.history)
    load_raw(project, project.new_day)

    for table in SOURCES:
        rows = project.history.rows(table) + project.new_day.rows(table)
        assert _scalar(project.database_path, f"select count(*) from {RAW_SCHEMA}.{table}") == rows
    ordered_at = "select max(ordered_at) from raw.orders"
    with duckdb.connect(str(project.database_path), read_only=True) as connection:
        row = connection.execute(ordered_at).fetchone()
    assert row is not None and row[0].date() == project.new_day.day  # a timestamp, not text


def test_writes_into_a_fresh_repository_but_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write_demo_project(tmp_path, rows=SMALL)

    with pytest.raises(ReleasekitError, match=r"dbt_project\.yml"):
        write_demo_project(tmp_path, rows=SMALL)


def test_rejects_too_few_rows(tmp_path: Path) -> None:
    with pytest.raises(ReleasekitError, match="rows=1"):
        write_demo_project(tmp_path, rows=1)


def test_demo_change_matches_exactly_once(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, rows=SMALL)
    relative, old, new = DEMO_CHANGE

    assert (project.project_dir / relative).read_text().count(old) == 1
    assert old != new


def test_var_readers_are_the_models_that_read_the_var(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, rows=SMALL)

    readers = {
        path.stem
        for path in (project.project_dir / "models").rglob("*.sql")
        if f"var('{DEMO_VAR}')" in path.read_text()
    }
    assert readers == set(DEMO_VAR_READERS)


@pytest.mark.slow
@pytest.mark.integration
def test_dbt_build_passes_and_the_var_changes_results(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path)
    load_raw(project, project.history)

    default = _dbt_build(project.project_dir)
    assert default.returncode == 0, default.stdout[-3000:]
    with_qa = _scalar(project.database_path, "select count(*) from customers")
    without = _dbt_build(project.project_dir, "--vars", f"{{{DEMO_VAR}: false}}")
    assert without.returncode == 0, without.stdout[-3000:]
    assert _scalar(project.database_path, "select count(*) from customers") < with_qa


@pytest.mark.slow
@pytest.mark.integration
def test_dbt_build_passes_after_the_demo_change_and_results_move(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path)
    load_raw(project, project.history)
    revenue = "select sum(revenue) from revenue_daily"
    before = _dbt_build(project.project_dir)
    assert before.returncode == 0, before.stdout[-3000:]
    revenue_before = _scalar(project.database_path, revenue)

    _apply_demo_change(project.project_dir)
    after = _dbt_build(project.project_dir)
    assert after.returncode == 0, after.stdout[-3000:]
    assert _scalar(project.database_path, revenue) > revenue_before
