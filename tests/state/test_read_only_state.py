"""A state folder releasekit cannot write is a setup problem (exit 2, one line naming the
path and the fix), found before anything is built, never a bug (exit 3).

Read-only is made with chmod; as root, which chmod does not stop, with `chattr +i`
(immutable); a root without that capability skips those cases and says why. A file where
a folder is expected needs neither and always runs.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli_runs import Run, run_cli
from tests.support.projects import commit, git, make_repo, write_files
from tests.support.warehouse_reads import physical

pytestmark = pytest.mark.integration


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` and everything under it unwritable for this process, restored afterwards."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p, mode in modes.items():
            p.chmod(stat.S_IMODE(mode) & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(stat.S_IMODE(mode))
        return
    chattr = shutil.which("chattr")
    made = chattr and subprocess.run([chattr, "-R", "+i", str(path)], capture_output=True, text=True)
    if not made or made.returncode != 0:
        reason = made.stderr.strip() if made else "chattr is not installed"
        pytest.skip(f"running as root, where chmod does not stop writes, and chattr +i failed: {reason}")
    assert chattr is not None
    try:
        yield
    finally:
        subprocess.run([chattr, "-R", "-i", str(path)], check=True)


def _exit_2_naming(run: Run, path: Path) -> str:
    """The error, rich's line wrapping undone."""
    stderr = " ".join(run.stderr.split())
    assert run.code == 2, run.text()
    assert "hit a bug" not in stderr
    assert str(path) in stderr, run.text()
    return stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev deployed once, then a model changed and committed: the next deploy must build."""
    repo = make_repo(tmp_path_factory.mktemp("template") / "repo")
    assert run_cli(repo, "deploy", "dev").code == 0
    write_files(repo, {"models/stg_customers.sql": "select 1 as customer_id, 'cy' as name\n"})
    commit(repo, "rename a customer")
    return repo


@pytest.fixture
def deployed(template: Path, tmp_path: Path) -> Path:
    """A copy of the template for one test (a repository, its state and its warehouse)."""
    return Path(shutil.copytree(template, tmp_path / "repo", symlinks=True))


def test_a_read_only_ledger_stops_a_deploy_before_it_builds(deployed: Path) -> None:
    ledger = deployed / ".releasekit" / "ledger" / "dev"
    before = physical(deployed)
    with read_only(ledger):
        run = run_cli(deployed, "deploy", "dev")
    stderr = _exit_2_naming(run, ledger)
    assert "cannot use the state folder" in stderr and "writable" in stderr
    assert physical(deployed) == before  # nothing was built


def test_a_read_only_state_folder_is_exit_2_for_every_command_that_writes(deployed: Path) -> None:
    state = deployed / ".releasekit"
    git(deployed, "switch", "-q", "-c", "feature/x")
    with read_only(state):
        runs = {
            "deploy": run_cli(deployed, "deploy", "dev"),
            "rollback": run_cli(deployed, "rollback", "dev"),
            "gc": run_cli(deployed, "gc"),
            "env up": run_cli(deployed, "env", "up"),
        }
    for name, run in runs.items():
        assert f"cannot use the state folder: {state}" in _exit_2_naming(run, state), name


def test_an_unwritable_dbt_log_is_exit_2_naming_it(deployed: Path) -> None:
    log = deployed / ".releasekit" / "logs" / "dbt.log"
    with read_only(log):
        run = run_cli(deployed, "plan", "dev")
    assert f"dbt cannot write {log}" in _exit_2_naming(run, log)


def test_a_file_where_the_ledger_folder_should_be(deployed: Path) -> None:
    """Runs as any user: the environment's ledger folder is a file."""
    ledger = deployed / ".releasekit" / "ledger" / "dev"
    shutil.rmtree(ledger)
    ledger.write_text("not a folder\n")
    before = physical(deployed)
    run = run_cli(deployed, "deploy", "dev")
    _exit_2_naming(run, ledger)
    assert physical(deployed) == before  # nothing was built
