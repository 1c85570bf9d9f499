"""A refresh repository and its warehouse (DuckDB or a fresh PostgreSQL database), loaded
and read as a loader and a consumer would: what refresh and SPC tests work on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasekit import api
from releasekit.api import Workspace
from tests.support import warehouse_reads
from tests.support.postgres import Pg, fresh_database, postgres_profile
from tests.support.refresh_project import load_raw, refresh_repo


@dataclass
class Bench:
    """A refresh repository and its warehouse, read and loaded as a consumer and a loader would."""

    repo: Path
    sql: Callable[[str], list[tuple[Any, ...]]]
    database: str = "duckdb"

    def workspace(self) -> Workspace:
        return Workspace.open(self.repo)

    def deploy(self, env: str = "dev") -> api.DeployResult:
        result = api.deploy(self.workspace(), env)
        assert result.ok, result.failures
        return result

    def refresh(self, env: str = "dev", **options: Any) -> api.RefreshResult:
        return api.refresh(self.workspace(), env, **options)

    def rows(self, relation: str, order: str = "1") -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.sql(f"select * from {relation} order by {order}")]

    def physical(self) -> set[str]:
        found = self.sql(
            "select table_name from information_schema.tables where table_schema = 'rk__physical'"
        )
        return {str(name) for (name,) in found}

    def execute(self, statement: str) -> None:
        self.sql(statement)


def duckdb_bench(root: Path, files: dict[str, str] | None = None) -> Bench:
    repo = refresh_repo(root, files=files)
    bench = Bench(repo, lambda statement: warehouse_reads.sql(repo, statement))
    load_raw(bench.execute)
    return bench


@contextlib.contextmanager
def postgres_bench(root: Path, files: dict[str, str] | None = None) -> Iterator[Bench]:
    with fresh_database() as database:
        repo = refresh_repo(root, profile=postgres_profile(database), files=files)
        pg = Pg(database)
        try:
            bench = Bench(repo, pg.sql, "postgres")
            load_raw(bench.execute)
            yield bench
        finally:
            pg.close()
