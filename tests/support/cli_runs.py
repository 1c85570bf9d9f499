"""Running the real `releasekit` command in a test repository, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RELEASEKIT = str(Path(sys.executable).with_name("releasekit"))


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def text(self) -> str:
        return f"exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def cli_env() -> dict[str, str]:
    """The caller's environment without RELEASEKIT_* settings, plain output, no hooks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEASEKIT_")}
    env.update(NO_COLOR="1", COLUMNS="200", RELEASEKIT_SKIP_HOOKS="1")
    return env


def run_cli(repo: Path, *args: str, timeout: float = 180, env: Mapping[str, str] | None = None) -> Run:
    """The command in `repo`; `env` adds variables to cli_env() (RELEASEKIT_STATE_URL, AWS_*)."""
    started = time.monotonic()
    result = subprocess.run(
        [RELEASEKIT, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**cli_env(), **(env or {})},
    )
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)
