"""Snapshots follow the stateful rule: versioned like models, reused while unchanged."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from releasekit import api
from tests.support.projects import BASE_FILES, commit, make_repo, write_files

pytestmark = pytest.mark.integration

SNAPSHOT = """\
snapshots:
  - name: orders_snapshot
    relation: ref('stg_orders')
    config:
      unique_key: id
      strategy: check
      check_cols: all
"""


@pytest.mark.slow
def test_a_snapshot_is_versioned_and_reused_while_unchanged(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"snapshots/orders_snapshot.yml": SNAPSHOT})
    first = api.deploy(api.Workspace.open(repo), "dev")
    assert "orders_snapshot" in {s.name for s in first.plan.builds}
    with duckdb.connect(str(repo / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from dev.orders_snapshot").fetchone() == (3,)

    write_files(
        repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"].replace("group by", "\ngroup by")}
    )
    commit(repo, "reformat revenue")
    second = api.deploy(api.Workspace.open(repo), "dev")
    assert {s.name for s in second.plan.builds} == {"revenue", "big_spenders"}
    assert "orders_snapshot" in {s.name for s in second.plan.reuses}

    write_files(
        repo, {"snapshots/orders_snapshot.yml": SNAPSHOT.replace("check_cols: all", "check_cols: [amount]")}
    )
    commit(repo, "snapshot only amounts")
    third = api.deploy(api.Workspace.open(repo), "dev")
    assert [(s.name, s.reasons, s.stateful) for s in third.plan.builds] == [
        ("orders_snapshot", ("config changed",), True)
    ]
