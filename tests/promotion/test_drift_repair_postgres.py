"""Drift made by hand on PostgreSQL, seen and repaired through real `releasekit` runs.

Here DROP refuses to drop a relation a view reads: a physical relation goes only with
CASCADE, which takes every environment's view on it along. status and doctor report
each environment; a deploy rebuilds the relation and switches, a sync of the other
environment puts its view back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from releasekit import api
from releasekit.api import Workspace
from tests.support.cli_runs import Run, run_cli
from tests.support.postgres import Pg, fresh_database, postgres_profile
from tests.support.projects import git, make_repo

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# staging: dev's parameters, so it serves dev's physical relations.
STAGING = {"environments/staging.yml": "version: 1\nschema: staging\nbranch: staging\n"}


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[Path, Pg]]:
    with fresh_database() as database:
        repo = make_repo(tmp_path / "repo", STAGING, profile=postgres_profile(database, threads=2))
        git(repo, "branch", "staging")
        pg = Pg(database)
        try:
            for env in ("dev", "staging"):
                assert run_cli(repo, "deploy", env).code == 0
            yield repo, pg
        finally:
            pg.close()


def said(run: Run) -> str:
    return " ".join(run.stdout.split())


def run(repo: Path, code: int, *args: str) -> str:
    done = run_cli(repo, *args)
    assert done.code == code, done.text()
    return said(done)


@pytest.mark.slow
def test_dropped_views_marker_and_physical_relation_are_reported_then_repaired(
    deployed: tuple[Path, Pg],
) -> None:
    repo, pg = deployed
    before = {env: pg.views(env) for env in ("dev", "staging")}
    relation = before["dev"]["orders"]
    # revenue and big_spenders are views in the physical schema too: CASCADE drops them.
    gone = ", ".join(sorted(before["dev"][name] for name in ("big_spenders", "orders", "revenue")))
    assert before["staging"]["orders"] == relation  # one physical relation, two environments
    with pytest.raises(psycopg2.errors.DependentObjectsStillExist):
        pg.sql(f"DROP TABLE rk__physical.{relation}")
    pg.sql(f"DROP TABLE rk__physical.{relation} CASCADE")  # takes revenue and both views along
    pg.sql("DROP VIEW dev.customers")
    pg.sql("DROP VIEW staging._releasekit_release")

    status = run(repo, 1, "status")
    assert "missing view(s) in dev: big_spenders, customers, orders, revenue" in status
    assert f"dev: physical relation(s) gone from rk__physical: {gone}" in status
    assert "schema staging has no release marker (release 1 expected)" in status
    doctor = run(repo, 1, "doctor")
    assert "✘ warehouse dev" in doctor and "✘ warehouse staging" in doctor and "✔ warehouse prod" in doctor

    out = run(repo, 0, "deploy", "dev")
    assert "dev is now release 2" in out and "built 3, reused 4" in out
    assert "built orders (physical relation missing)" in out
    assert "repaired missing view(s) in dev" in out
    out = run(repo, 0, "sync", "staging")
    assert "staging repaired: release 1 switched in again whole" in out and "nothing built" in out

    assert {env: pg.views(env) for env in ("dev", "staging")} == before
    for env in ("dev", "staging"):
        pg.every_view_selects(env)
    assert pg.marker("staging")[0] == 1
    assert [row[0] for row in pg.sql("SELECT id FROM staging.orders ORDER BY id")] == [1, 3]
    status = run(repo, 0, "status")
    assert "drift" not in status
    assert "All checks passed" in run(repo, 0, "doctor")
    repair = api.releases(Workspace.open(repo), "staging")[-1]
    assert (repair.kind, repair.release_id) == ("repair", 1)
    assert "no release marker" in repair.note and "missing view(s) in staging" in repair.note
