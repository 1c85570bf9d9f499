"""An environment's lock as users meet it: a deploy refused with exit 4 naming the holder,
and `releasekit unlock` clearing what a killed holder left (exit 0) or refusing (2, 4)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli_runs import Run, run_cli
from tests.support.projects import make_repo

pytestmark = pytest.mark.integration

STATE_TESTS = Path(__file__).resolve().parents[1] / "state"


@contextmanager
def lock_holder(state: Path, env: str, owner: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A child process holding `env`'s lock through LocalStore, and the id of its hold."""
    repo_root = STATE_TESTS.parents[1]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(STATE_TESTS)])}
    child = subprocess.Popen(
        [sys.executable, str(STATE_TESTS / "_state_workers.py"), "hold-lock", str(state), env, owner],
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        said, lock_id = child.stdout.readline().split()
        assert said == "locked"
        yield child, lock_id
    finally:
        child.kill()
        child.wait()


def said(run: Run) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(run.stderr.split())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_locked_deploy_exits_4_naming_the_holder_then_unlock_clears_a_killed_one(repo: Path) -> None:
    with lock_holder(repo / ".releasekit", "dev", "deploy dev by ci-runner-7") as (holder, lock_id):
        run = run_cli(repo, "deploy", "dev")
        print(f"locked deploy: exit {run.code} in {run.seconds:.2f} s")
        assert run.code == 4, run.text()
        assert holder.poll() is None  # refused while the holder still holds: it did not wait for it
        assert (
            f"environment 'dev' is locked by deploy dev by ci-runner-7 (pid {holder.pid} on "
            f"{socket.gethostname()}) since " in said(run)
        )
        assert f"lock id {lock_id}" in said(run)
        assert f"releasekit unlock dev --id {lock_id}" in said(run)

        run = run_cli(repo, "unlock", "dev", "--id", lock_id)
        assert run.code == 4, run.text()
        assert f"live process: pid {holder.pid}" in said(run)

        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()

    run = run_cli(repo, "unlock", "dev", "--id", "ffffffffffff")
    assert run.code == 2, run.text()
    assert f"held under id '{lock_id}'" in said(run)

    run = run_cli(repo, "unlock", "dev", "--id", lock_id)
    assert run.code == 0, run.text()
    assert f"dev is unlocked: cleared lock {lock_id} of deploy dev by ci-runner-7 (pid {holder.pid}" in (
        " ".join(run.stdout.split())
    )

    run = run_cli(repo, "unlock", "dev", "--id", lock_id)
    assert run.code == 2, run.text()
    assert "'dev' is not locked" in said(run)


def test_unlock_without_an_id_is_a_usage_error(repo: Path) -> None:
    run = run_cli(repo, "unlock", "dev")
    assert run.code == 2, run.text()
    assert "--id" in run.stderr
