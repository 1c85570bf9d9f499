"""`releasekit check` on PostgreSQL: the same steps against a real server (a fresh database
per test), including the row diff on a declared key and logic tests in a read-only
transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from tests.support.postgres import fresh_database, postgres_profile
from tests.support.projects import BASE_FILES, commit, git, make_repo, write_files

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

LOGIC = {
    "logic_tests/orders_are_positive.sql": (
        "-- description: no order is free\nselect id from {{ ref('orders') }} where amount_cents <= 0\n"
    )
}


def test_a_branch_is_checked_against_dev_on_postgres(tmp_path: Path) -> None:
    with fresh_database() as database:
        repo = make_repo(tmp_path / "repo", LOGIC, profile=postgres_profile(database))
        assert api.deploy(Workspace.open(repo), "dev").ok
        git(repo, "switch", "-q", "-c", "feature/prices")
        # Order 3 gets a new amount, order 4 appears; orders gains a column.
        write_files(
            repo,
            {
                "seeds/raw_orders.csv": "id,customer_id,amount\n1,1,20\n2,1,5\n3,2,45\n4,2,60\n",
                "models/orders.sql": BASE_FILES["models/orders.sql"].replace(
                    "as amount_cents\n", "as amount_cents, o.amount > 30 as is_large\n"
                ),
            },
        )
        sha = commit(repo, "new prices")

        report = api.check(Workspace.open(repo), only=("build", "logic", "diff"))

        assert report.passed, report.verdict
        assert {c.name: c.status for c in report.checks} == {
            "lint": "skipped",
            "build": "passed",
            "logic": "passed",
            "diff": "passed",
        }
        orders = next(i for i in report.impacts if i.model == "orders")
        assert orders.classification == "non-breaking"
        assert [(c.column, c.change) for c in orders.columns] == [("is_large", "added")]
        assert (orders.rows_before, orders.rows_after) == (2, 3)
        assert orders.rows is not None and orders.rows.key == ("id",)
        assert (orders.rows.added, orders.rows.removed, orders.rows.changed) == (1, 0, 1)
        assert Workspace.open(repo).store.checks(sha)[-1].passed
