"""The hooks driving real branch environments: `git switch -c` brings one up in the
background, `git branch -D` tears it down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from tests.support.projects import git, make_repo

pytestmark = pytest.mark.integration

RELEASEKIT = str(Path(sys.executable).parent / "releasekit")
BRANCH = 'feat/$(touch${IFS}canary);"x"'


def wait_for(predicate: object, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def branches(repo: Path) -> list[str]:
    return [status.record.branch for status in api.env_list(Workspace.open(repo))]


def git_quiet(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RELEASEKIT_SKIP_HOOKS"}
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, check=True)


def test_new_branch_brings_up_its_environment_and_deleting_it_tears_it_down(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    subprocess.run([RELEASEKIT, "deploy", "dev"], cwd=repo, check=True, capture_output=True)
    subprocess.run([RELEASEKIT, "hooks", "install"], cwd=repo, check=True, capture_output=True)

    switched = git_quiet(repo, "switch", "-c", BRANCH)
    # The work goes on in the background: when git returns, it has not finished.
    assert f"finished: releasekit env up -- {BRANCH}" not in (repo / ".releasekit/logs/hooks.log").read_text()
    assert len((switched.stdout + switched.stderr).strip().splitlines()) <= 2  # git's own line + ours
    assert wait_for(lambda: branches(repo) == [BRANCH]), (repo / ".releasekit/logs/hooks.log").read_text()

    git_quiet(repo, "switch", "main")
    git_quiet(repo, "branch", "-D", BRANCH)
    assert wait_for(lambda: branches(repo) == []), (repo / ".releasekit/logs/hooks.log").read_text()
    assert not (repo / "canary").exists()
    git(repo, "status")  # the repository is fine
