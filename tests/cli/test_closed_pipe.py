"""A reader that goes away (`releasekit plan dev | head -1`) is not an error: the command
finishes its work quietly and exits with its own code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.cli_runs import RELEASEKIT, cli_env, run_cli
from tests.support.projects import make_repo


def _run_into_closed_pipe(repo: Path, *args: str) -> tuple[int, str]:
    """Run the command with its stdout a pipe whose only reader is already closed: every
    write to it fails with EPIPE, as after `head -1` has read its line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [RELEASEKIT, *args],
            cwd=repo,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            env=cli_env(),
        )
    finally:
        os.close(write_end)
    return result.returncode, result.stderr


def test_plan_into_a_closed_pipe_exits_0_quietly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    code, stderr = _run_into_closed_pipe(repo, "plan", "dev")
    assert (code, stderr) == (0, "")


def test_deploy_into_a_closed_pipe_finishes_the_deploy(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    code, stderr = _run_into_closed_pipe(repo, "deploy", "dev")
    assert (code, stderr) == (0, "")
    releases = run_cli(repo, "releases", "dev")
    assert releases.code == 0 and "succeeded" in releases.stdout, releases.text()


def test_help_into_a_closed_pipe_exits_0_quietly(tmp_path: Path) -> None:
    code, stderr = _run_into_closed_pipe(tmp_path, "--help")
    assert (code, stderr) == (0, "")


def test_a_real_shell_pipe_into_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"'{RELEASEKIT}' plan dev | head -1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Plan for dev")
