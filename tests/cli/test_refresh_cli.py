"""`releasekit refresh` as a user runs it: its output and exit codes (0 published or
nothing to do, 1 held back, 2 could not run), on a real DuckDB project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import warehouse_reads
from tests.support.cli_runs import run_cli
from tests.support.refresh_project import insert, load_raw, refresh_repo

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_refresh_from_the_command_line(tmp_path: Path) -> None:
    repo = refresh_repo(tmp_path / "repo")

    def execute(statement: str) -> list[tuple[Any, ...]]:
        return warehouse_reads.sql(repo, statement)

    load_raw(execute)

    never = run_cli(repo, "refresh", "dev")
    assert never.code == 2, never.text()
    assert "'dev' has no live release to refresh" in never.stderr and "releasekit deploy dev" in never.stderr
    assert "Traceback" not in never.stderr

    assert run_cli(repo, "deploy", "dev").code == 0
    quiet = run_cli(repo, "refresh")  # no name: the current branch's environment (main: dev)
    assert quiet.code == 0, quiet.text()
    assert "Nothing to refresh" in quiet.stdout

    insert(execute, "orders", [(4, 2, 7)])
    planned = run_cli(repo, "refresh", "dev", "--dry-run")
    assert planned.code == 0, planned.text()
    assert "raw.orders" in planned.stdout and "3" in planned.stdout and "4" in planned.stdout
    assert "source raw.orders changed (rows 3 -> 4)" in planned.stdout
    assert "Dry run: nothing written" in planned.stdout

    published = run_cli(repo, "refresh", "dev")
    assert published.code == 0, published.text()
    assert "dev is now release 2" in published.stdout and "refreshed data" in published.stdout

    insert(execute, "orders", [(5, 2, None)])
    held = run_cli(repo, "refresh", "dev")
    assert held.code == 1, held.text()
    assert "refresh of dev held back" in held.stdout and "not_null_orders_amount" in held.stdout
    assert [row[0] for row in execute("select id from dev.orders order by id")] == [1, 2, 3, 4]

    ledger = run_cli(repo, "releases", "dev")
    assert "refresh" in ledger.stdout and "failed" in ledger.stdout
    assert "data of release" in ledger.stdout  # the notes column names what it refreshed

    status = run_cli(repo, "status", "dev")
    assert status.code == 0, status.text()
    assert "data as of" in status.stdout and "Data dev serves (release 2)" in status.stdout
    assert "raw.orders (4)" in status.stdout  # orders of release 2 were written on 4 source rows

    wrong = run_cli(repo, "refresh", "dev", "--select", "orders,nope")
    assert wrong.code == 2 and "--select names no model of the live release: nope" in wrong.stderr
