"""The `releasekit` command as users run it: a real process in a real git repository, real
dbt and DuckDB underneath. Exit codes are the contract (releasekit.errors): 0 ok,
1 checks found problems, 2 could not run, 3 a bug.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.projects import BASE_FILES, commit, make_repo, write_files

pytestmark = pytest.mark.integration

RELEASEKIT = Path(sys.executable).with_name("releasekit")


def releasekit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RELEASEKIT_")}
    result = subprocess.run(
        [str(RELEASEKIT), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=environ
    )
    print(f"releasekit {' '.join(args)}: exit {result.returncode} in {time.monotonic() - started:.2f} s")
    assert "hit a bug" not in result.stderr, result.stderr  # exit 3 with a crash log
    return result


def ok(cwd: Path, *args: str) -> str:
    result = releasekit(cwd, *args)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_help_exits_0_listing_the_commands(tmp_path: Path) -> None:
    out = ok(tmp_path, "--help")
    for command in ("deploy", "plan", "rollback", "releases", "status", "gc", "init", "unlock"):
        assert command in out


def test_unknown_environment_exits_2_naming_the_declared_ones(repo: Path) -> None:
    result = releasekit(repo, "plan", "staging")
    assert result.returncode == 2
    assert "no environment named 'staging' (declared: dev, prod;" in result.stderr
    assert "environments/staging.yml" in result.stderr


def test_missing_releasekit_yml_exits_2_and_hints_init(repo: Path) -> None:
    (repo / "releasekit.yml").unlink()
    commit(repo, "no releasekit")
    result = releasekit(repo, "status")
    assert result.returncode == 2
    assert "releasekit.yml" in result.stderr
    assert "releasekit init" in result.stderr


def test_uncommitted_change_exits_2_naming_the_file_and_allow_dirty(repo: Path) -> None:
    write_files(repo, {"models/orders.sql": BASE_FILES["models/orders.sql"] + "-- wip\n"})
    result = releasekit(repo, "deploy", "dev")
    assert result.returncode == 2
    assert "models/orders.sql" in result.stderr
    assert "--allow-dirty" in result.stderr


def test_plan_deploy_noop_releases_status_exit_0(repo: Path) -> None:
    out = ok(repo, "plan", "dev")
    assert "Plan for dev" in out and "7 to build" in out and "0 to reuse" in out

    out = ok(repo, "deploy", "dev")
    assert "dev is now release 1" in out
    assert "built 7, reused 0" in out

    out = ok(repo, "deploy", "dev")
    assert "Nothing changed" in out and "stays on release 1" in out

    out = ok(repo, "releases", "dev")
    assert "Ledger of dev" in out and "succeeded" in out and "deploy" in out

    out = ok(repo, "status")
    assert "dev" in out and "prod" in out and "in sync" in out and "drift" not in out


@pytest.mark.slow
def test_deploy_change_rollback_gc_exit_0(repo: Path) -> None:
    ok(repo, "deploy", "dev")
    write_files(
        repo, {"models/customers.sql": BASE_FILES["models/customers.sql"] + "where customer_id > 0\n"}
    )
    commit(repo, "customers: real ones only")

    out = ok(repo.parent, "-C", str(repo), "deploy", "dev")  # -C: run as if started there
    assert "dev is now release 2" in out and "built 4, reused 3" in out
    assert "customers" in out and "SQL changed" in out

    out = ok(repo, "rollback", "dev")
    assert "rolled back from release 2 to release 1" in out and "nothing built" in out
    assert "4 of 7 views switched" in out  # the 4 it built; the 3 it reused stay as they were
    out = ok(repo, "rollback", "dev", "--to", "2")
    assert "from release 1 to release 2" in out
    assert "rollback" in ok(repo, "releases", "dev")

    out = ok(repo, "gc", "--dry-run")
    assert "rk__physical: would drop 0 relation(s)" in out  # retention 3 keeps both releases

    out = ok(repo, "gc")
    assert "rk__physical: dropped 0 relation(s), kept 11" in out


def test_rollback_with_nothing_to_roll_back_to_exits_2(repo: Path) -> None:
    result = releasekit(repo, "rollback", "dev")
    assert result.returncode == 2
    assert "no live release" in result.stderr
    assert "releasekit deploy dev" in result.stderr


@pytest.mark.slow
def test_failed_deploy_exits_1_and_names_the_failing_test(repo: Path) -> None:
    write_files(
        repo,
        {
            "models/dupes.sql": "select 1 as id union all select 1\n",
            "models/dupes.yml": (
                "version: 2\nmodels:\n  - name: dupes\n    columns:\n      - name: id\n"
                "        data_tests: [unique]\n"
            ),
        },
    )
    commit(repo, "dupes")

    result = releasekit(repo, "deploy", "dev")

    assert result.returncode == 1
    assert "deploy of dev failed" in result.stdout
    assert "unique_dupes_id" in result.stdout
    assert "\x1b" not in result.stdout  # piped output: no terminal colours from dbt or rich
    out = ok(repo, "releases", "dev")
    assert "failed" in out
    status = ok(repo, "status")  # the failed first deploy left nothing behind: no drift, nothing live
    assert "drift" not in status and "in sync" not in status
