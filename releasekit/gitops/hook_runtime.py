"""What one git hook invocation does: decide, then start the work in the background.

post-checkout PREV NEW FLAG
    A checkout that created a branch (`git switch -c`, `git checkout -b`, `git worktree add
    -b`, a `git switch x` that creates x from origin/x) brings that branch's environment up.
    git tells the hook neither the branch nor whether it is new, so we read git's own records;
    a branch counts as just created when all of these hold:
      1. FLAG is 1 (a branch checkout, not `git checkout -- file`) and HEAD is a branch;
      2. the branch's reflog holds exactly one entry, `branch: Created from ...`: it has
         neither moved nor been reset since it was created (deleting a branch deletes its
         reflog, so a re-created name starts afresh);
      3. that entry is at most FRESH_SECONDS old: created by this command, not yesterday;
      4. HEAD's reflog shows no earlier checkout of it (`switch -c b; switch main; switch b`
         within a minute brings it up once).
    PREV == NEW is not a test: `git switch existing` at the same commit looks the same, and
    `git checkout -b x origin/x` moves HEAD. Needs reflogs (git's default with a working tree);
    without them no branch looks new and nothing runs.

reference-transaction STATE, stdin lines `<old> <new> <ref>`
    On STATE `committed`, each `refs/heads/<b>` whose new value is the zero id is a deletion
    candidate; it is one only if the branch and its reflog are both gone. git before 2.45 also
    runs this hook for packed-refs bookkeeping: `git pack-refs`/`gc` report loose branches as
    "deleted" while they live on in packed-refs, and one `git branch -D` of a packed branch
    reports the deletion twice, the first time before its reflog is removed. A rename
    (`git branch -m a b`) deletes `a` and so tears a's environment down.

The work is `releasekit env up|down -- <branch>`, run detached from git (own session, output
appended to .releasekit/logs/hooks.log), so the git command returns at once. Branch names only
ever travel in argv lists, never through a shell. A hook prints at most one line and never
raises. RELEASEKIT_HOOK_DRY_RUN=1 logs the decision and the commands instead of running them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

DRY_RUN_ENV = "RELEASEKIT_HOOK_DRY_RUN"
SKIP_ENV = "RELEASEKIT_SKIP_HOOKS"
LOG = Path(".releasekit", "logs", "hooks.log")
FRESH_SECONDS = 60
_HEAD_REFLOG_DEPTH = 50
_CREATED = "branch: Created from "
_ZERO = re.compile(r"0{40}(0{24})?")  # SHA-1 or SHA-256 null id


@dataclass(frozen=True)
class Decision:
    hook: str
    action: Literal["up", "down"] | None
    branches: tuple[str, ...]
    reason: str  # why, for the log and dry runs

    def commands(self) -> list[list[str]]:
        return [["releasekit", "env", self.action, "--", b] for b in self.branches] if self.action else []


def run_hook(
    hook: str,
    args: Sequence[str],
    stdin: str = "",
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    now: Callable[[], float] = time.time,
) -> str | None:
    """Handle one hook invocation; return the one line to show, if any. Never raises."""
    env = dict(os.environ if environ is None else environ)
    if env.get(SKIP_ENV) == "1":  # the shim checks too; this is for the pre-commit framework
        return None
    log = Path(tempfile.gettempdir(), "releasekit", "hooks.log")
    try:
        git = _Git(cwd or Path.cwd(), env)
        root = git.toplevel()
        if root is None:  # a bare repository: no project, no environments
            return None
        log = root / LOG
        return _act(_decide(hook, args, stdin, git, env, now()), root, log, env)
    except Exception:
        _append(log, f"{hook}: failed\n{traceback.format_exc()}")
        return f"releasekit: the {hook} hook failed; details in {log} (your git command is not affected)"


def _decide(
    hook: str, args: Sequence[str], stdin: str, git: _Git, environ: Mapping[str, str], now: float
) -> Decision:
    if hook == "post-checkout":
        return _decide_post_checkout(git, _checkout_args(args, environ), now)
    if hook == "reference-transaction":
        return _decide_reference_transaction(git, args[0] if args else "", stdin)
    return Decision(hook, None, (), "releasekit has nothing to do in this hook")


def _checkout_args(args: Sequence[str], environ: Mapping[str, str]) -> tuple[str, str, str]:
    if len(args) >= 3:
        return args[0], args[1], args[2]
    # The pre-commit framework passes them as variables (see .pre-commit-hooks.yaml).
    names = ("PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF", "PRE_COMMIT_CHECKOUT_TYPE")
    prev, new, flag = (environ.get(name, "") for name in names)
    return prev, new, flag


def _decide_post_checkout(git: _Git, args: tuple[str, str, str], now: float) -> Decision:
    def skip(reason: str) -> Decision:
        return Decision("post-checkout", None, (), reason)

    if args[2] != "1":
        return skip("a file checkout")
    ref = git.output("symbolic-ref", "-q", "HEAD")
    if not ref or not ref.startswith("refs/heads/"):
        return skip("HEAD is detached")
    branch = ref.removeprefix("refs/heads/")
    entries = git.reflog(ref, 2)
    if len(entries) != 1 or not entries[0][1].startswith(_CREATED):
        return skip(f"{branch} existed before this checkout")
    created = entries[0][0]
    if now - created > FRESH_SECONDS:
        return skip(f"{branch} was created {now - created:.0f} s ago, not by this checkout")
    arrived = f" to {branch}"
    checkouts = [
        when
        for when, subject in git.reflog("HEAD", _HEAD_REFLOG_DEPTH)
        if when >= created and subject.startswith("checkout: moving from ") and subject.endswith(arrived)
    ]
    if len(checkouts) > 1:
        return skip(f"{branch} has been checked out before")
    return Decision("post-checkout", "up", (branch,), f"{branch} was created by this checkout")


def _decide_reference_transaction(git: _Git, state: str, stdin: str) -> Decision:
    gone: list[str] = []
    for line in stdin.splitlines() if state == "committed" else ():
        old_new_ref = line.split(" ", 2)
        if len(old_new_ref) != 3 or not old_new_ref[2].startswith("refs/heads/"):
            continue
        new, ref = old_new_ref[1], old_new_ref[2]
        branch = ref.removeprefix("refs/heads/")
        if _ZERO.fullmatch(new) and branch not in gone and git.deleted(ref):
            gone.append(branch)
    if not gone:
        return Decision("reference-transaction", None, (), f"no branch deleted ({state or 'no state'})")
    return Decision("reference-transaction", "down", tuple(gone), "deleted")


def _act(decision: Decision, root: Path, log: Path, environ: Mapping[str, str]) -> str | None:
    dry_run = environ.get(DRY_RUN_ENV) == "1"
    if decision.action is None:
        if dry_run:
            _append(log, f"{decision.hook}: no action: {decision.reason}")
        return None
    shown = "; ".join(shlex.join(command) for command in decision.commands())
    where = f"log: {_relative(log, root)}"
    if dry_run:
        _append(log, f"{decision.hook}: dry run, would run: {json.dumps(decision.commands())}")
        return f"releasekit: dry run, would run {shown} ({where})"
    _append(log, f"{decision.hook}: {decision.reason}; starting {shown}")
    _start(decision.commands(), root, log, environ)
    doing = "bringing up" if decision.action == "up" else "tearing down"
    names = ", ".join(decision.branches)
    return f"releasekit: {doing} the environment for {names} in the background ({where})"


def _start(commands: list[list[str]], root: Path, log: Path, environ: Mapping[str, str]) -> None:
    """Run the commands one after another in a process git does not wait for: its own session
    (no signals from the terminal), no stdin, output to the log rather than git's stderr (a
    caller reading git's stderr through a pipe would otherwise wait for it too)."""
    # Git commands releasekit runs must not re-enter these hooks.
    env = {**environ, SKIP_ENV: "1"}
    with log.open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "releasekit.gitops.hook_runtime", json.dumps(commands)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_jobs(commands: list[list[str]]) -> int:
    """The background half: run each `releasekit ...` command with this interpreter."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # a branch name need not be UTF-8
    worst = 0
    for command in commands:
        print(f"{_stamp()} running: {shlex.join(command)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", *command], stdin=subprocess.DEVNULL)
        took = time.monotonic() - started
        print(f"{_stamp()} finished: {shlex.join(command)}: exit {code} in {took:.1f} s", flush=True)
        worst = max(worst, code)
    return worst


class _Git:
    """git run with argv lists only, and without the variables that tie git to the hook's caller."""

    # A subprocess, not GitRepo: inside git's own hook it must drop git's local env vars, and
    # must not pay for importing gitpython on every checkout.

    def __init__(self, cwd: Path, environ: Mapping[str, str]) -> None:
        self._cwd = cwd
        self._env = dict(environ)
        for name in self.output("rev-parse", "--local-env-vars").split():
            self._env.pop(name, None)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=self._cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding=sys.getfilesystemencoding(),
            errors="surrogateescape",  # branch names are bytes; keep them exact
        )

    def output(self, *args: str) -> str:
        done = self._run(*args)
        return done.stdout.strip() if done.returncode == 0 else ""

    def toplevel(self) -> Path | None:
        top = self.output("rev-parse", "--show-toplevel")
        return Path(top) if top else None

    def reflog(self, ref: str, depth: int) -> list[tuple[int, str]]:
        """The newest `depth` entries of `ref`'s reflog as (unix time, message)."""
        lines = self.output("log", "-g", f"-n{depth}", "--format=%gd%x09%gs", "--date=unix", ref, "--")
        entries = []
        for line in lines.splitlines():
            selector, _, subject = line.partition("\t")
            when = re.search(r"@\{(\d+)\}$", selector)
            if when:
                entries.append((int(when.group(1)), subject))
        return entries

    def deleted(self, ref: str) -> bool:
        exists = self._run("show-ref", "--verify", "--quiet", ref).returncode == 0
        return not exists and self._run("reflog", "exists", ref).returncode != 0


def _append(log: Path, message: str) -> None:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8", errors="backslashreplace") as out:
            out.write(f"{_stamp()} {message}\n")
    except OSError:
        pass  # a hook must not fail because its log cannot be written


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


if __name__ == "__main__":
    raise SystemExit(run_jobs(json.loads(sys.argv[1])))
