"""releasekit's git hooks in real repositories: install and uninstall, the shell shim as git
runs it, and what `hook-impl` decides. Decisions are read from RELEASEKIT_HOOK_DRY_RUN's log,
which records the exact argv the hook would have run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from releasekit.cli.errors import Exit
from releasekit.cli.hooks import hooks
from releasekit.errors import GitError
from releasekit.gitops.hook_runtime import LOG, run_hook
from releasekit.gitops.hooks import CHAINED_SUFFIX, MARKER, install_hooks, is_ours, uninstall_hooks

ROOT = Path(__file__).resolve().parents[2]
DRY = {"RELEASEKIT_HOOK_DRY_RUN": "1"}
SKIP = {"RELEASEKIT_SKIP_HOOKS": "1"}
ZERO = "0" * 40
HOSTILE = ['zzz";echo${IFS}"hello";#', "feat/$(touch${IFS}canary)", "feat/`touch${IFS}canary`"]


def git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60
    )
    if check:
        assert done.returncode == 0, f"git {shlex.join(args)}: {done.returncode}\n{done.stderr}"
    return done


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "commit", "-q", "-m", "first")
    return path


class Decisions:
    """Reads the hooks log a little at a time: what each git command made the hooks decide."""

    def __init__(self, root: Path) -> None:
        self.log = root / LOG
        self.seen = 0

    def new(self) -> list[tuple[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        fresh, self.seen = lines[self.seen :], len(lines)
        found: list[tuple[str, Any]] = []
        for line in fresh:
            if "would run: " in line:
                found.append(("run", json.loads(line.split("would run: ", 1)[1])))
            elif "no action: " in line:
                found.append(("skip", line.split("no action: ", 1)[1]))
        return found

    def runs(self) -> list[list[str]]:
        return [command for kind, payload in self.new() if kind == "run" for command in payload]


def write_hook(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


# --- install and uninstall ----------------------------------------------------------------


def test_install_writes_both_hooks_executable(repo: Path) -> None:
    result = install_hooks(repo)

    assert result.hooks_dir == repo / ".git" / "hooks"
    assert [p.name for p in result.written] == ["post-checkout", "reference-transaction"]
    assert result.chained == ()
    for path in result.written:
        assert os.access(path, os.X_OK)
        assert is_ours(path)
        text = path.read_text()
        assert text.startswith(f"#!/bin/sh\n{MARKER}\n")
        assert f"INSTALL_PYTHON={shlex.quote(sys.executable)}\n" in text
        assert f"HOOK={path.name}\n" in text
        assert len(text.splitlines()) < 45
        subprocess.run(["sh", "-n", str(path)], check=True)


def test_install_twice_is_idempotent(repo: Path) -> None:
    first = install_hooks(repo)
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in first.hooks_dir.iterdir()}

    again = install_hooks(repo)

    assert again.chained == ()
    assert {p.name: (p.read_bytes(), p.stat().st_mode) for p in again.hooks_dir.iterdir()} == before


def test_install_follows_worktrees_and_core_hooks_path(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    assert install_hooks(tmp_path / "wt").hooks_dir == repo / ".git" / "hooks"

    git(repo, "config", "core.hooksPath", ".githooks")
    result = install_hooks(repo)

    assert result.hooks_dir == repo / ".githooks"
    assert is_ours(repo / ".githooks" / "post-checkout")


def test_install_outside_a_repository_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository") as caught:
        install_hooks(tmp_path)
    assert "git init" in str(caught.value)


def test_existing_hooks_are_chained_and_still_get_args_and_stdin(repo: Path, tmp_path: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    calls = tmp_path / "calls.txt"
    write_hook(hooks_dir / "post-checkout", f'echo "post-checkout $*" >> {shlex.quote(str(calls))}')
    write_hook(
        hooks_dir / "reference-transaction",
        f'{{ echo "reference-transaction $1"; cat; }} >> {shlex.quote(str(calls))}',
    )

    result = install_hooks(repo)
    git(repo, "switch", "-q", "-c", "feat/x", env=DRY)

    assert sorted(p.name for p in result.chained) == [
        f"post-checkout{CHAINED_SUFFIX}",
        f"reference-transaction{CHAINED_SUFFIX}",
    ]
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    recorded = calls.read_text()
    assert f"post-checkout {head} {head} 1\n" in recorded
    assert f"reference-transaction committed\n{ZERO} {head} refs/heads/feat/x\n" in recorded
    assert Decisions(repo).runs() == [["releasekit", "env", "up", "--", "feat/x"]]


def test_a_chained_hook_keeps_its_exit_status_releasekit_adds_none(repo: Path) -> None:
    # post-checkout's status becomes git switch's; a user's hook that failed before still does.
    hooks_dir = repo / ".git" / "hooks"
    write_hook(hooks_dir / "post-checkout", "exit 3")
    assert git(repo, "switch", "-q", "-c", "before", check=False).returncode == 1

    install_hooks(repo)
    assert git(repo, "switch", "-q", "-c", "after", check=False).returncode == 1

    (hooks_dir / f"post-checkout{CHAINED_SUFFIX}").unlink()
    assert git(repo, "switch", "-q", "-c", "ours-only").returncode == 0


def test_uninstall_restores_exactly(repo: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    for sample in hooks_dir.glob("*.sample"):
        sample.unlink()
    write_hook(hooks_dir / "post-checkout", "echo mine")
    (hooks_dir / "post-checkout").chmod(0o750)
    write_hook(hooks_dir / "pre-commit", "exit 0")
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in hooks_dir.iterdir()}
    install_hooks(repo)

    result = uninstall_hooks(repo)

    assert [p.name for p in result.removed] == ["post-checkout", "reference-transaction"]
    assert [p.name for p in result.restored] == ["post-checkout"]
    assert result.foreign == ()
    assert {p.name: (p.read_bytes(), p.stat().st_mode) for p in hooks_dir.iterdir()} == before


def test_uninstall_leaves_a_hook_that_replaced_ours(repo: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    install_hooks(repo)
    write_hook(hooks_dir / "post-checkout", "echo someone else")

    result = uninstall_hooks(repo)

    assert [p.name for p in result.foreign] == ["post-checkout"]
    assert (hooks_dir / "post-checkout").read_text().endswith("echo someone else\n")
    assert not (hooks_dir / "reference-transaction").exists()


def test_install_refuses_to_overwrite_an_earlier_chained_hook(repo: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    write_hook(hooks_dir / "post-checkout", "echo new")
    write_hook(hooks_dir / f"post-checkout{CHAINED_SUFFIX}", "echo old")

    with pytest.raises(GitError, match="neither is releasekit's shim"):
        install_hooks(repo)
    assert not (hooks_dir / "reference-transaction").exists()  # refused before writing anything


def test_cli_install_and_uninstall(repo: Path) -> None:
    cli = click.Group("releasekit")
    cli.add_command(hooks)
    runner = CliRunner()

    installed = runner.invoke(cli, ["hooks", "install"], obj={"project_root": repo})
    assert installed.exit_code == 0, installed.output
    assert f"installed in {repo / '.git' / 'hooks'}" in installed.output
    assert "hook-impl" not in runner.invoke(cli, ["hooks", "--help"]).output

    removed = runner.invoke(cli, ["hooks", "uninstall"], obj={"project_root": repo})
    assert removed.exit_code == 0, removed.output
    assert "post-checkout, reference-transaction" in removed.output

    outside = runner.invoke(cli, ["hooks", "install"], obj={"project_root": repo.parent})
    assert isinstance(outside.exception, Exit)
    assert outside.exception.code == 2


# --- the shim as git runs it --------------------------------------------------------------


def test_skip_hooks_variable_turns_releasekit_off(repo: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    write_hook(repo / ".git" / "hooks" / "post-checkout", f"echo ran >> {shlex.quote(str(calls))}")
    install_hooks(repo)

    switched = git(repo, "switch", "-c", "feat/x", env={**SKIP, **DRY})
    git(repo, "switch", "-q", "main", env=SKIP)
    deleted = git(repo, "branch", "-D", "feat/x", env={**SKIP, **DRY})

    assert "releasekit" not in switched.stderr + deleted.stderr
    assert not (repo / LOG).exists()
    assert calls.read_text() == "ran\nran\n"  # the user's own hook is not releasekit's to skip


@pytest.mark.parametrize("releasekit", ["missing", "failing"])
def test_git_never_fails_because_of_releasekit(repo: Path, tmp_path: Path, releasekit: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if releasekit == "failing":
        write_hook(bin_dir / "releasekit", "echo boom >&2; exit 3")
    path = f"{bin_dir}{os.pathsep}{os.path.dirname(shutil.which('git') or '/usr/bin/git')}:/usr/bin:/bin"
    if releasekit == "missing" and shutil.which("releasekit", path=path):
        pytest.skip("a releasekit is installed system-wide")
    install_hooks(repo, python=str(tmp_path / "gone" / "python"))

    switched = git(repo, "switch", "-c", "feat/x", env={"PATH": path})
    git(repo, "switch", "-q", "main", env={"PATH": path})
    deleted = git(repo, "branch", "-D", "feat/x", env={"PATH": path})

    expected = "boom" if releasekit == "failing" else "releasekit: not found, post-checkout hook skipped"
    assert expected in switched.stderr
    assert "feat/x" not in git(repo, "branch", "--list").stdout
    assert deleted.returncode == 0


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_branch_names_reach_hook_impl_intact(repo: Path, name: str) -> None:
    install_hooks(repo)
    decisions = Decisions(repo)

    created = git(repo, "switch", "-c", name, env=DRY)
    assert decisions.runs() == [["releasekit", "env", "up", "--", name]]
    git(repo, "switch", "-q", "main", env=DRY)
    deleted = git(repo, "branch", "-D", name, env=DRY)
    assert decisions.runs() == [["releasekit", "env", "down", "--", name]]

    assert not list(repo.parent.rglob("canary"))
    assert "hello" not in (created.stdout + created.stderr + deleted.stdout + deleted.stderr).split()


def test_post_checkout_acts_only_on_a_branch_this_checkout_created(repo: Path, tmp_path: Path) -> None:
    install_hooks(repo)
    decisions = Decisions(repo)

    def after(*args: str) -> list[tuple[str, Any]]:
        git(repo, *args, env=DRY)
        return decisions.new()

    assert after("switch", "-c", "new1") == [("run", [["releasekit", "env", "up", "--", "new1"]])]
    assert after("checkout", "-b", "new2") == [("run", [["releasekit", "env", "up", "--", "new2"]])]
    assert after("switch", "main") == [("skip", "main existed before this checkout")]
    assert after("switch", "new1") == [("skip", "new1 has been checked out before")]
    hour_ago = f"{int(time.time()) - 3600} +0000"
    git(repo, "branch", "old", env={"GIT_COMMITTER_DATE": hour_ago})
    [(kind, reason)] = after("switch", "old")
    assert kind == "skip"
    assert str(reason).startswith("old was created 3")
    (repo / "a.txt").write_text("changed\n")
    assert after("checkout", "--", "a.txt") == [("skip", "a file checkout")]
    assert after("switch", "--detach", "HEAD") == [("skip", "HEAD is detached")]

    git(repo, "worktree", "add", "-q", "-b", "in-worktree", str(tmp_path / "wt"), env=DRY)
    assert Decisions(tmp_path / "wt").runs() == [["releasekit", "env", "up", "--", "in-worktree"]]


def test_reference_transaction_acts_only_on_branch_deletions(repo: Path) -> None:
    install_hooks(repo)
    decisions = Decisions(repo)

    def after(*args: str) -> list[list[str]]:
        git(repo, *args, env=DRY)
        return decisions.runs()

    (repo / "a.txt").write_text("b\n")
    assert after("commit", "-q", "-am", "second") == []
    assert after("tag", "v1") == [] and after("tag", "-d", "v1") == []
    assert after("branch", "loose") == []
    assert after("branch", "-D", "loose") == [["releasekit", "env", "down", "--", "loose"]]
    # gc/pack-refs report loose branches as deleted while packed-refs keeps them (git < 2.45),
    # and deleting a packed branch reports it twice: still exactly one teardown.
    assert after("branch", "packed") == []
    assert after("pack-refs", "--all") == []
    assert after("branch", "-D", "packed") == [["releasekit", "env", "down", "--", "packed"]]
    assert after("branch", "renamed") == []
    assert after("branch", "-m", "renamed", "renamed2") == [["releasekit", "env", "down", "--", "renamed"]]


def test_background_job_is_detached_from_git(repo: Path) -> None:
    """For real: git returns at once, even to a caller reading its stderr through a pipe, and
    the job's outcome lands in the log."""
    install_hooks(repo)

    switched = git(repo, "switch", "-c", "feat/bg")
    # git did not wait for the job: when it returns, the job has not finished.
    assert "finished: releasekit env up -- feat/bg" not in (repo / LOG).read_text()

    lines = [line for line in switched.stderr.splitlines() if line.startswith("releasekit:")]
    assert lines == [
        "releasekit: bringing up the environment for feat/bg in the background "
        "(log: .releasekit/logs/hooks.log)"
    ]
    deadline = time.monotonic() + 30
    while "finished: releasekit env up -- feat/bg: exit" not in (repo / LOG).read_text():
        assert time.monotonic() < deadline, (repo / LOG).read_text()
        time.sleep(0.2)


# --- hook-impl called directly -------------------------------------------------------------


def test_hook_impl_reads_whole_transactions(repo: Path) -> None:
    environ = {**os.environ, **DRY}
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    gone = f"{head} {ZERO} refs/heads/gone-a\n{ZERO} {ZERO} refs/heads/gone-b\n"
    alive = f"{head} {ZERO} refs/heads/main\n{head} {ZERO} refs/remotes/origin/x\n{head} {ZERO} refs/tags/t\n"

    def hook(*args: str, stdin: str = "") -> str | None:
        return run_hook(args[0], args[1:], stdin, cwd=repo, environ=environ)

    assert hook("reference-transaction", "prepared", stdin=gone) is None
    assert hook("reference-transaction", "aborted", stdin=gone) is None
    assert hook("reference-transaction", "committed", stdin=alive) is None
    assert hook("reference-transaction", "committed", stdin=gone + gone) == (
        "releasekit: dry run, would run releasekit env down -- gone-a; releasekit env down -- gone-b "
        "(log: .releasekit/logs/hooks.log)"
    )
    assert hook("reference-transaction", stdin="garbage\n\n") is None
    assert hook("post-checkout") is None
    assert hook("pre-push", "origin") is None
    assert run_hook("post-checkout", [head, head, "1"], cwd=repo.parent, environ=environ) is None


def test_hook_impl_takes_pre_commit_frameworks_variables(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [(h["id"], h["stages"]) for h in spec] == [
        ("releasekit-env", ["post-checkout"]),
        ("releasekit-lint", ["pre-commit"]),
    ]
    assert (spec[0]["pass_filenames"], spec[0]["always_run"]) == (False, True)
    assert spec[1]["entry"] == "releasekit lint" and spec[1]["types"] == ["sql"]
    entry = shlex.split(spec[0]["entry"])
    assert entry[:3] == ["releasekit", "hooks", "hook-impl"]
    git(repo, "switch", "-q", "-c", "feat/pc")
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    variables = {"PRE_COMMIT_FROM_REF": head, "PRE_COMMIT_TO_REF": head, "PRE_COMMIT_CHECKOUT_TYPE": "1"}

    cli = click.Group("releasekit")
    cli.add_command(hooks)
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(cli, entry[1:], env={**DRY, **variables})

    assert result.exit_code == 0, result.output
    assert "would run releasekit env up -- feat/pc" in result.output


def test_hook_impl_never_raises(repo: Path) -> None:
    def broken_clock() -> float:
        raise RuntimeError("clock broke")

    line = run_hook("post-checkout", ["a", "b", "1"], cwd=repo, environ=dict(os.environ), now=broken_clock)

    assert line == (
        f"releasekit: the post-checkout hook failed; details in {repo / LOG} "
        "(your git command is not affected)"
    )
    assert "RuntimeError: clock broke" in (repo / LOG).read_text()
