"""`releasekit env down BRANCH --missing-ok`, as a pull request's teardown job runs it: a
branch that never got an environment (closed before its check ran) is no error."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli_runs import run_cli
from tests.support.projects import make_repo


def test_missing_ok_exits_0_with_one_line_when_the_branch_has_no_environment(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    down = run_cli(repo, "env", "down", "feature/closed-early", "--missing-ok")
    assert down.code == 0, down.text()
    assert down.stdout.strip() == "feature/closed-early: no branch environment, nothing to drop."
    strict = run_cli(repo, "env", "down", "feature/closed-early")
    assert strict.code == 2 and "has no branch environment releasekit made" in strict.stderr, strict.text()


def test_missing_ok_still_refuses_a_declared_environments_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    down = run_cli(repo, "env", "down", "main", "--missing-ok")
    assert down.code == 2, down.text()
    assert "belongs to the declared environment 'dev'" in down.stderr
