"""`releasekit check` judges the branch's rebuilt models against the base environment's
history (statistical process control): a change that halves a table is flagged in the pull
request although no test fails; a change that leaves the data as it was is not. Real git,
dbt and DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from tests.support.projects import commit, git, write_files
from tests.support.refresh_bench import duckdb_bench
from tests.support.refresh_project import insert

pytestmark = pytest.mark.integration

FILES = {"environments/dev.yml": "version: 1\nschema: dev\nbranch: main\nspc: {severity: error}\n"}
ORDERS = (
    "{{ config(materialized='table') }}\n"
    "select o.id, o.customer_id, c.name, o.amount\n"
    "from {{ ref('stg_orders') }} o join {{ ref('customers') }} c using (customer_id)\n"
)


@pytest.mark.slow
def test_a_change_that_halves_a_table_is_flagged_against_the_bases_history(tmp_path: Path) -> None:
    bench = duckdb_bench(tmp_path / "repo", FILES)
    bench.deploy()
    for load in range(9):
        insert(bench.execute, "orders", [(100 + 10 * load + i, 1 + i % 2, 20 + i % 7) for i in range(10)])
        assert bench.refresh().outcome == "published"

    git(bench.repo, "switch", "-q", "-c", "feature/even-orders")
    write_files(bench.repo, {"models/orders.sql": ORDERS + "where o.id % 2 = 0\n"})
    commit(bench.repo, "only even orders")
    halved = api.check(Workspace.open(bench.repo), only=("build", "diff"))

    diff, build = halved.check("diff"), halved.check("build")
    assert diff is not None and build is not None
    [finding] = [f for f in diff.findings if f.code == "spc-anomaly" and "row_count" in f.message]
    assert finding.subject == "orders" and finding.severity == "error"
    assert "points of dev's history" in finding.message and "expected 93" in finding.message
    assert diff.status == "failed" and not halved.passed
    assert build.status == "passed"  # no test fails: only SPC sees it

    write_files(bench.repo, {"models/orders.sql": ORDERS + "-- the same rows, said again\n"})
    commit(bench.repo, "a comment")
    same = api.check(Workspace.open(bench.repo), only=("build", "diff"))
    same_diff = same.check("diff")
    assert same_diff is not None and not [f for f in same_diff.findings if f.code == "spc-anomaly"]
