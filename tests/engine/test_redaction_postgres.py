"""A failure that quotes rendered SQL carries no env_var() value anywhere: PostgreSQL's
error (`invalid input syntax ... "<value>"`, `LINE 7: select '<value>'::integer`) is
redacted before the ledger, the reports and the terminal see it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from releasekit.state.base import STATE_AREAS
from tests.support.cli_runs import Run, run_cli
from tests.support.postgres import fresh_database, postgres_profile
from tests.support.projects import commit, git, make_repo, write_files

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SECRET = "hunter2-shop-secret"
MARKER = "<redacted env_var SHOP_SECRET>"
GOOD = {"models/secret_region.sql": "select '{{ env_var(\"SHOP_SECRET\") }}' as region\n"}
# PostgreSQL refuses the cast and quotes the value twice: in its message and in LINE.
BAD = {"models/secret_region.sql": "select '{{ env_var(\"SHOP_SECRET\") }}'::integer as region\n"}


def _state_documents(repo: Path) -> dict[Path, str]:
    state = repo / ".releasekit"
    return {
        path: path.read_text(encoding="utf-8", errors="replace")
        for area in STATE_AREAS
        for path in (state / area).rglob("*")
        if path.is_file()
    }


@pytest.mark.slow
def test_a_failure_quoting_a_secret_is_redacted_everywhere(tmp_path: Path) -> None:
    env = {"SHOP_SECRET": SECRET}
    with fresh_database() as database:
        repo = make_repo(tmp_path / "repo", GOOD, profile=postgres_profile(database, threads=2))
        runs: list[Run] = [run_cli(repo, "deploy", "dev", env=env)]
        assert runs[-1].code == 0, runs[-1].text()

        git(repo, "switch", "-q", "-c", "feature/cast")
        write_files(repo, BAD)
        commit(repo, "cast the region")
        reports = {name: tmp_path / name for name in ("report.json", "report.md", "report.xml")}
        runs.append(
            run_cli(
                repo,
                "check",
                "--only",
                "build",
                "--json",
                str(reports["report.json"]),
                "--markdown",
                str(reports["report.md"]),
                "--junit",
                str(reports["report.xml"]),
                env=env,
            )
        )
        assert runs[-1].code == 1, runs[-1].text()

        git(repo, "switch", "-q", "main")
        git(repo, "merge", "-q", "--ff-only", "feature/cast")
        runs.append(run_cli(repo, "deploy", "dev", env=env))
        assert runs[-1].code == 1, runs[-1].text()
        runs.append(run_cli(repo, "releases", "dev", env=env))

    output = "\n".join(run.stdout + run.stderr for run in runs)
    plain = hashlib.sha256(SECRET.encode()).hexdigest()[:8]  # no unkeyed hash, not even a prefix
    assert SECRET not in output and plain not in output
    assert "invalid input syntax for type integer" in output and MARKER in output
    for path, text in {**_state_documents(repo), **{p: p.read_text() for p in reports.values()}}.items():
        assert SECRET not in text and plain not in text, path
    ledger = "\n".join(text for path, text in _state_documents(repo).items() if "ledger" in path.parts)
    assert re.search(rf"LINE \d+: +select '{re.escape(MARKER)}'::integer", ledger), ledger
    assert MARKER in reports["report.json"].read_text()
    assert "&lt;redacted env_var SHOP_SECRET&gt;" in reports["report.xml"].read_text()
    assert "&lt;redacted env\\_var SHOP\\_SECRET&gt;" in reports["report.md"].read_text()
