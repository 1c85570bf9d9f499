"""Names a release cannot serve, refused at plan time by `releasekit plan` and `deploy`
alike (exit 2), before anything is built or recorded: real git, dbt and DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli_runs import run_cli
from tests.support.postgres import Pg, fresh_database, postgres_profile
from tests.support.projects import commit, make_repo, write_files
from tests.support.warehouse_reads import relations

pytestmark = pytest.mark.integration


def nothing_done(repo: Path) -> None:
    ledger = repo / ".releasekit" / "ledger"
    assert not ledger.exists() or not any(ledger.rglob("*.json")), "a ledger entry was written"
    if (repo / "warehouse.duckdb").exists():
        assert "rk__physical" not in relations(repo), "something was built"


def test_models_differing_only_in_case_are_refused_naming_both(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"models/Orders.sql": "select 1 as id\n"})
    for command in ("plan", "deploy"):
        run = run_cli(repo, command, "dev")
        assert run.code == 2, run.text()
        error = " ".join(run.stderr.split())
        assert "model 'Orders' (models/Orders.sql)" in error, run.text()
        assert "model 'orders' (models/orders.sql)" in error, run.text()
        assert "would both be served as view 'orders'" in error, run.text()
        assert "hint: rename one of them" in error, run.text()
    nothing_done(repo)


def test_a_seed_and_a_model_share_the_view_namespace(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"seeds/Customers.csv": "id\n1\n"})
    run = run_cli(repo, "plan", "dev")
    assert run.code == 2, run.text()
    error = " ".join(run.stderr.split())
    assert "seed 'Customers' (seeds/Customers.csv)" in error and "model 'customers'" in error, run.text()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["_releasekit_release", "_ReleaseKit_Notes"])
def test_a_model_named_like_releasekit_s_own_views_is_refused_before_building(
    tmp_path: Path, name: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    write_files(repo, {f"models/{name}.sql": "select 1 as release_id\n"})
    commit(repo, "a model named like the marker")
    run = run_cli(repo, "deploy", "dev")
    assert run.code == 2, run.text()
    error = " ".join(run.stderr.split())
    assert f"model {name!r} (models/{name}.sql)" in error, run.text()
    assert "names starting with '_releasekit' are releasekit's" in error, run.text()
    nothing_done(repo)
    # Renamed, the project deploys.
    (repo / "models" / f"{name}.sql").rename(repo / "models" / "release_notes.sql")
    commit(repo, "renamed")
    assert run_cli(repo, "deploy", "dev").code == 0


LONG = "daily_revenue_by_customer_segment_and_region_with_rolling_windows"  # 65 bytes


def test_a_view_name_longer_than_postgresql_keeps_is_refused_there_before_building(
    tmp_path: Path,
) -> None:
    assert len(LONG.encode()) == 65
    with fresh_database() as database:
        repo = make_repo(
            tmp_path / "repo", {f"models/{LONG}.sql": "select 1 as id\n"}, profile=postgres_profile(database)
        )
        run = run_cli(repo, "deploy", "dev")
        assert run.code == 2, run.text()
        error = " ".join(run.stderr.split())
        assert f"model {LONG!r} (models/{LONG}.sql): its view name is 65 bytes" in error, run.text()
        assert "cuts names at 63 bytes" in error and "at most 63 bytes" in error, run.text()
        nothing_done(repo)
        pg = Pg(database)
        try:
            assert "rk__physical" not in pg.schemas()
        finally:
            pg.close()


def test_duckdb_keeps_long_view_names(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {f"models/{LONG}.sql": "select 1 as id\n"})
    run = run_cli(repo, "plan", "dev")
    assert run.code == 0, run.text()
    assert LONG in run.stdout
