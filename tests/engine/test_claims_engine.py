"""Deploys and gc beside other environments' live runs, through `releasekit.api` on DuckDB:
what a live run claims is left alone, a deploy that needs a relation another run is
building waits for it, and a dead run's leftovers are stale as before.

The "other run" is a second state-store handle holding an environment's lock and claiming
relations, as a deploy of that environment in another process does between its plan and
its switch.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.config.model import Connection
from releasekit.engine.deploy import deploy
from releasekit.state.local import LocalStore
from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.registry import connect
from tests.support.projects import BASE_FILES, commit, make_repo, write_files
from tests.support.warehouse_reads import every_view_selects, physical, sql, views

pytestmark = pytest.mark.integration


def _changed(repo: Path) -> None:
    sql_text = BASE_FILES["models/stg_customers.sql"].replace("bob", "rob")
    write_files(repo, {"models/stg_customers.sql": sql_text})
    commit(repo, "customer 2 is rob")


def test_a_deploy_waits_for_a_live_run_building_what_it_needs_then_builds_it_when_that_run_died(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    _changed(repo)
    wanted = [step.relation for step in api.plan(Workspace.open(repo), "dev").builds]
    assert wanted
    other = LocalStore(repo / ".releasekit")
    heard: list[str] = []
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(api.deploy(Workspace.open(repo), "dev", on_wait=heard.append))
        except Exception as exc:  # reported by the assertions below
            outcome.append(exc)

    with other.lock("prod", owner="deploy prod elsewhere") as held:
        other.claim("prod", "rk__physical", wanted, [])
        deploying = threading.Thread(target=run)
        deploying.start()
        deadline = time.monotonic() + 120
        while not heard and deploying.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard and not outcome, outcome
        assert "prod by deploy prod elsewhere" in heard[0] and held.id in heard[0]
        # The other run got as far as building one relation, then died: a leftover.
        sql(repo, f"create table rk__physical.{wanted[0]} as select 1 as half_built")
    deploying.join(timeout=300)
    [result] = outcome
    assert isinstance(result, api.DeployResult) and result.outcome == "succeeded", result
    assert {step.relation for step in result.plan.builds} == set(wanted)
    assert wanted[0] in result.plan.stale  # the dead run's leftover was rebuilt, not reused
    assert set(views(repo, "dev").values()) <= physical(repo)
    every_view_selects(repo, "dev")


def test_gc_beside_a_live_run_keeps_what_it_claims_and_drops_it_once_that_run_is_gone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    building = "orders__0badc0de"
    sql(repo, f"create table rk__physical.{building} as select 1 as id")
    sql(repo, f"create table rk__physical.{building}__dbt_tmp as select 1 as id")
    other = LocalStore(repo / ".releasekit")
    with other.lock("prod", owner="deploy prod elsewhere"):
        other.claim("prod", "rk__physical", [building], [])
        [kept] = api.gc(Workspace.open(repo))  # beside the live run, not refused by its lock
        assert building not in kept.dropped and f"{building}__dbt_tmp" not in kept.dropped
        assert {building, f"{building}__dbt_tmp"} <= physical(repo)
    [swept] = api.gc(Workspace.open(repo))
    assert {building, f"{building}__dbt_tmp"} <= set(swept.dropped)
    assert not {building, f"{building}__dbt_tmp"} & physical(repo)
    every_view_selects(repo, "dev")


def _outsider_opens(path: Path) -> bool:
    """Whether another process can open the DuckDB file now."""
    probe = (
        "import duckdb, sys\n"
        "try:\n    duckdb.connect(sys.argv[1]).close()\n"
        "except duckdb.Error:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, str(path)], check=False).returncode == 0


def test_a_duckdb_deploy_keeps_the_file_from_its_plan_to_its_switch(tmp_path: Path) -> None:
    """No other process opens the file between the plan and dbt's build, nor between the
    build and the switch: it would make dbt's connection, or the switch, fail."""
    repo = make_repo(tmp_path / "repo")
    api.deploy(Workspace.open(repo), "dev")
    _changed(repo)
    workspace = Workspace.open(repo)
    context = workspace.run_context(workspace.environment("dev"), builds=True)
    opened: list[bool] = []

    def open_watched(connection: Connection) -> Warehouse:
        opened.append(_outsider_opens(Path(str(connection.settings["path"]))))
        return connect(connection)

    result = deploy(dataclasses.replace(context, open_warehouse=open_watched))
    assert result.outcome == "succeeded"
    assert opened[0] and len(opened) >= 3  # free before the deploy; then plan, hold, switch
    assert not any(opened[1:]), opened  # never free again until the switch was made
