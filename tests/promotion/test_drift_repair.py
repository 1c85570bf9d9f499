"""Drift made by hand, seen and repaired, as a user meets it: real `releasekit` processes
on real git, dbt and DuckDB. A view, the marker or a physical relation dropped by hand is
reported by `status` (exit 1) and `doctor` (exit 1); `deploy` or `sync` puts it back and
says so; the ledger records what was repaired.

dev is deployed once per module into a template repository; each test works on a copy.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import duckdb
import pytest

from releasekit import api
from releasekit.api import Workspace
from tests.support.cli_runs import Run, run_cli
from tests.support.projects import git, make_repo
from tests.support.warehouse_reads import every_view_selects, marker, physical, sql, views

pytestmark = pytest.mark.integration

BRANCH = "feature/x"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev at release 1; a branch environment for feature/x, views onto it."""
    repo = make_repo(tmp_path_factory.mktemp("drift") / "template")
    assert run_cli(repo, "deploy", "dev").code == 0
    git(repo, "branch", BRANCH)
    api.env_up(Workspace.open(repo), BRANCH)
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    def skip(folder: str, _names: list[str]) -> list[str]:
        return ["dbt"] if Path(folder).name == ".releasekit" else []

    return Path(shutil.copytree(template, tmp_path / "repo", symlinks=True, ignore=skip))


def ok(repo: Path, *args: str) -> str:
    run = run_cli(repo, *args)
    assert run.code == 0, run.text()
    return " ".join(run.stdout.split())


def failing(repo: Path, *args: str) -> Run:
    run = run_cli(repo, *args)
    assert run.code == 1, run.text()
    assert "hit a bug" not in run.stderr, run.text()
    return run


def said(run: Run) -> str:
    return " ".join(run.stdout.split())


def branch_schema(repo: Path) -> str:
    [record] = Workspace.open(repo).store.branches()
    return record.schema


@pytest.mark.slow
def test_a_view_dropped_by_hand_is_reported_and_deploy_puts_it_back(repo: Path) -> None:
    before = views(repo, "dev")
    sql(repo, "drop view dev.orders")

    status = said(failing(repo, "status"))
    assert "missing view(s) in dev: orders" in status
    doctor = said(failing(repo, "doctor"))
    assert "✘ warehouse dev: schema dev no longer serves its live release whole" in doctor
    assert "missing view(s) in dev: orders" in doctor and "releasekit deploy dev" in doctor
    assert "to repair missing view(s) in dev: orders" in ok(repo, "plan", "dev")

    out = ok(repo, "deploy", "dev")
    assert "dev repaired: release 1 switched in again whole" in out and "nothing built" in out
    assert "repaired missing view(s) in dev: orders" in out
    assert views(repo, "dev") == before
    assert marker(repo, "dev")[0] == 1
    every_view_selects(repo, "dev")
    last = api.releases(Workspace.open(repo), "dev")[-1]
    assert (last.kind, last.outcome, last.release_id) == ("repair", "succeeded", 1)
    assert last.note == "repaired: missing view(s) in dev: orders"
    assert "in sync" in ok(repo, "status") and "All checks passed" in ok(repo, "doctor")
    assert "Nothing changed" in ok(repo, "deploy", "dev")  # repaired once, then nothing to do
    # The repair is no release: a rollback still has none to go back to.
    assert run_cli(repo, "rollback", "dev").code == 2


def test_a_marker_dropped_by_hand_is_put_back_by_sync(repo: Path) -> None:
    sql(repo, "drop view dev._releasekit_release")
    assert "schema dev has no release marker (release 1 expected)" in said(failing(repo, "status"))

    out = ok(repo, "sync", "dev")
    assert "dev serves main's head" in out and "but its warehouse drifted" in out
    assert "dev repaired: release 1" in out and "repaired schema dev has no release marker" in out
    assert marker(repo, "dev")[0] == 1
    assert "in sync" in ok(repo, "sync", "dev")
    assert "in sync" in ok(repo, "status")


@pytest.mark.slow
def test_a_physical_relation_dropped_by_hand_is_rebuilt_and_switched(repo: Path) -> None:
    relation = views(repo, "dev")["orders"]
    sql(repo, f"drop table rk__physical.{relation}")
    with pytest.raises(duckdb.Error):  # DuckDB kept the view: consumers get an error
        sql(repo, "select * from dev.orders")

    status = said(failing(repo, "status"))
    assert f"physical relation(s) gone from rk__physical: {relation}" in status
    assert "warehouse dev" in said(failing(repo, "doctor"))

    out = ok(repo, "deploy", "dev")
    assert "dev is now release 2" in out and "built 1" in out
    assert "built orders (physical relation missing)" in out
    assert f"repaired physical relation(s) gone from rk__physical: {relation}" in out
    assert relation in physical(repo) and views(repo, "dev")["orders"] == relation
    every_view_selects(repo, "dev")
    last = api.releases(Workspace.open(repo), "dev")[-1]
    assert (last.kind, last.release_id) == ("deploy", 2)
    assert last.note == f"repaired: physical relation(s) gone from rk__physical: {relation}"
    assert "in sync" in ok(repo, "status")


@pytest.mark.slow
def test_status_and_doctor_look_at_branch_environments_too(repo: Path) -> None:
    schema = branch_schema(repo)
    sql(repo, f'drop view "{schema}".revenue')

    status = said(failing(repo, "status"))
    assert f"{BRANCH}: missing view(s) in {schema}: revenue" in status
    assert f"✘ warehouse {BRANCH}" in said(failing(repo, "doctor"))

    assert "repaired" in ok(repo, "deploy", BRANCH)
    assert "revenue" in views(repo, schema)
    assert "in sync" in ok(repo, "status")


def test_a_repair_killed_before_its_switch_is_settled_as_abandoned_and_done_again(repo: Path) -> None:
    sql(repo, "drop view dev.orders")
    store = Workspace.open(repo).store
    live = api.releases(Workspace.open(repo), "dev")[-1]
    # What a repair killed between its announcement and its switch leaves in the ledger;
    # the marker already named release 1, so only the views can tell it never committed.
    store.append(dataclasses.replace(live, kind="repair", outcome="switching", note="repaired: ..."))

    out = ok(repo, "deploy", "dev")
    assert "dev repaired: release 1" in out
    kinds = [(e.kind, e.outcome) for e in api.releases(Workspace.open(repo), "dev")[-4:]]
    assert kinds == [
        ("repair", "switching"),
        ("repair", "abandoned"),
        ("repair", "switching"),
        ("repair", "succeeded"),
    ]
    assert "orders" in views(repo, "dev")
