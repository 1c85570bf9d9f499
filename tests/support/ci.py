"""Repositories with releasekit set up, the CI files `releasekit ci init` writes into them,
and what runs those files the way GitHub would:

- a small GitHub Actions runner: a job's steps in order, `uses:` steps stood in for (the
  checkout done as actions/checkout does it), each `run:` step through `bash -e` with the
  runner's environment plus the workflow's, job's and step's `env:`, every `${{ }}`
  evaluated from a context the test gives, and `if:` tested as GitHub tests it;
- a forge on loopback that implements GitHub's issue-comments and GitLab's merge-request
  notes endpoints and keeps the comments.

The runner knows the expressions and actions the templates use, no more: one it does not
know fails the test, so a template that starts using it gets a harness that models it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from releasekit import api
from tests.support.cli_runs import cli_env
from tests.support.projects import BASE_FILES, commit, git, write_files

GITHUB_WORKFLOWS = (
    "releasekit-deploy.yml",
    "releasekit-gc.yml",
    "releasekit-pr.yml",
    "releasekit-promote.yml",
    "releasekit-refresh.yml",
)


def initialised_repo(root: Path) -> Path:
    """The shop project in git with `releasekit init`'s files (dev -> staging -> prod), committed."""
    write_files(root, {**BASE_FILES, ".gitignore": "*.duckdb\n*.wal\ntarget/\nlogs/\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ann")
    git(root, "config", "user.email", "ann@example.com")
    commit(root, "dbt project")
    api.init(root)
    commit(root, "releasekit config")
    return root


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict[Any, Any]) -> Any:
    """The workflow's `on:` (YAML 1.1, which PyYAML reads, takes the key `on` for true)."""
    return workflow["on"] if "on" in workflow else workflow[True]


# --- GitHub expressions -------------------------------------------------------------------

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_STATUS_CALL = re.compile(r"\b(success|failure|always|cancelled)\(\)")


def github_value(text: str, context: Mapping[str, Any], workspace: Path | None = None) -> str:
    """`text` with each `${{ }}` replaced as GitHub would. `context` holds `github`, `vars`,
    `secrets`, `inputs` as nested mappings; an unset variable or secret reads as ''."""
    return _EXPRESSION.sub(lambda match: _value(match.group(1), context, workspace), text)


def github_condition(
    expression: object, context: Mapping[str, Any], workspace: Path | None, *, failed: bool = False
) -> bool:
    """An `if:` as GitHub tests it (with or without `${{ }}`): `||` of `&&` of status
    functions and `==`/`!=` comparisons, no parentheses; without a status function,
    `success() && (...)` is implied."""
    text = "" if expression is None else str(expression).strip()
    if whole := _EXPRESSION.fullmatch(text):
        text = whole.group(1)
    text = " ".join(text.split())
    if re.search(r"(?<![\w)])\(", text):
        raise AssertionError(f"the harness does not evaluate parentheses in {text!r}")
    if not _STATUS_CALL.search(text) and (failed or not text):
        return not failed
    return any(
        all(_test(term.strip(), context, workspace, failed) for term in alternative.split("&&"))
        for alternative in text.split("||")
    )


def _test(term: str, context: Mapping[str, Any], workspace: Path | None, failed: bool) -> bool:
    # Nothing is ever cancelled here.
    status = {"success()": not failed, "failure()": failed, "always()": True, "cancelled()": False}
    if term.removeprefix("!") in status:
        return status[term.removeprefix("!")] != term.startswith("!")
    if compared := re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", term):
        left, operator, right = compared.groups()
        same = _operand(left, context, workspace) == _operand(right, context, workspace)
        return same if operator == "==" else not same
    raise AssertionError(f"the harness does not evaluate the condition {term!r}")


def _value(expression: str, context: Mapping[str, Any], workspace: Path | None) -> str:
    """`a || 'b'`: the first operand that is not empty."""
    values = [_operand(part, context, workspace) for part in expression.split("||")]
    return next((value for value in values if value), values[-1])


def _operand(text: str, context: Mapping[str, Any], workspace: Path | None) -> str:
    text = text.strip()
    if literal := re.fullmatch(r"'((?:[^']|'')*)'", text):
        return literal.group(1).replace("''", "'")
    if files := re.fullmatch(r"hashFiles\('([^']+)'\)", text):
        found = workspace is not None and any(p.is_file() for p in workspace.glob(files.group(1)))
        return "a hash of the files" if found else ""
    if re.fullmatch(r"[A-Za-z_]\w*(\.[\w-]+)+", text):
        return _lookup(text, context)
    raise AssertionError(f"the harness does not evaluate ${{{{ {text} }}}}")


def _lookup(path: str, context: Mapping[str, Any]) -> str:
    node: Any = context
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            # Unset: a variable, a secret; null: the inputs of an event that has none, a
            # field its payload lacks (a push has no github.event.schedule).
            if re.fullmatch(r"(vars|secrets|inputs|github\.event)\.[\w-]+", path):
                return ""
            raise AssertionError(f"the harness's context has no {path}")
        node = node[key]
    return _text(node)


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- the runner ---------------------------------------------------------------------------

# The `github` context's values a runner also gives as variables.
_GITHUB_VARIABLES = {
    "api_url": "GITHUB_API_URL",
    "repository": "GITHUB_REPOSITORY",
    "actor": "GITHUB_ACTOR",
    "event_name": "GITHUB_EVENT_NAME",
    "ref": "GITHUB_REF",
    "sha": "GITHUB_SHA",
    "head_ref": "GITHUB_HEAD_REF",
    "base_ref": "GITHUB_BASE_REF",
}
SUMMARY = "step_summary.md"  # in RUNNER_TEMP: GITHUB_STEP_SUMMARY
STEP_KEYS = frozenset({"name", "id", "if", "uses", "with", "run", "env"})
# Actions the harness stands in for: the checkout it does; the others' work is done already
# (the venv with releasekit is on PATH) or is not needed here (AWS access, artifacts).
KNOWN_ACTIONS = (
    "actions/checkout@",
    "actions/setup-python@",
    "aws-actions/configure-aws-credentials@",
    "actions/upload-artifact@",
)


@dataclass(frozen=True)
class StepRun:
    name: str
    outcome: str  # success | failure | skipped
    code: int | None = None  # a `run:` step's exit code
    output: str = ""


@dataclass(frozen=True)
class Runner:
    """One job's fresh machine: the workspace actions/checkout fills, a temp folder beside
    it (RUNNER_TEMP: the scripts, the job summary, the event, an empty git config), the
    expression context, and what the checkout does with its evaluated `with:`."""

    workspace: Path
    context: Mapping[str, Any]
    checkout: Callable[[Path, Mapping[str, str]], None]

    @property
    def temp(self) -> Path:
        return self.workspace.with_name(f"{self.workspace.name}.temp")

    @property
    def summary(self) -> Path:
        return self.temp / SUMMARY


def runner_environ(temp: Path, workspace: Path, github: Mapping[str, Any] | None = None) -> dict[str, str]:
    """What a GitHub runner gives every step: the GITHUB_* variables of the `github`
    context, the event as a file, a job summary file; this venv's `python` and `releasekit`
    first on PATH (setup-python's work); no git identity (a runner has none); and pip held
    to what is installed: an install step may find releasekit, never fetch or rebuild it."""
    github = github or {}
    temp.mkdir(parents=True, exist_ok=True)
    (temp / "gitconfig").touch()
    (temp / "event.json").write_text(json.dumps(github.get("event") or {}))
    (temp / SUMMARY).touch()
    env = {key: value for key, value in cli_env().items() if key != "RELEASEKIT_SKIP_HOOKS"}
    env.update(
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_EVENT_PATH=str(temp / "event.json"),
        GITHUB_STEP_SUMMARY=str(temp / SUMMARY),
        RUNNER_TEMP=str(temp),
        GIT_CONFIG_GLOBAL=str(temp / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.update({name: _text(github[key]) for key, name in _GITHUB_VARIABLES.items() if key in github})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def job_selected(workflow: Mapping[str, Any], job: str, context: Mapping[str, Any]) -> bool:
    return github_condition(workflow["jobs"][job].get("if"), context, None)


def run_job(workflow: Mapping[str, Any], job: str, runner: Runner) -> list[StepRun]:
    """Every step of the job, in order, on the runner: a failed step skips the steps after
    it unless their `if:` says otherwise (`!cancelled()`, `always()`, `failure()`)."""
    github = runner.context.get("github", {})
    environ = runner_environ(runner.temp, runner.workspace, github)
    ran: list[StepRun] = []
    for index, step in enumerate(workflow["jobs"][job]["steps"]):
        assert set(step) <= STEP_KEYS, f"the harness does not model {set(step) - STEP_KEYS} in {step}"
        name = str(step.get("name") or step.get("uses") or step["run"])
        failed = any(done.outcome == "failure" for done in ran)
        if not github_condition(step.get("if"), runner.context, runner.workspace, failed=failed):
            ran.append(StepRun(name, "skipped"))
        elif "uses" in step:
            ran.append(_use(step, name, runner))
        else:
            script = runner.temp / f"{job}-{index}.sh"
            ran.append(run_step(workflow, job, step, runner.workspace, runner.context, environ, script))
    return ran


def _use(step: Mapping[str, Any], name: str, runner: Runner) -> StepRun:
    action = str(step["uses"])
    assert action.startswith(KNOWN_ACTIONS), f"the harness does not stand in for {action}"
    options = {
        key: github_value(_text(value), runner.context) for key, value in (step.get("with") or {}).items()
    }
    if action.startswith("actions/checkout@"):
        runner.checkout(runner.workspace, options)
        return StepRun(name, "success")
    return StepRun(name, "skipped", output=f"{action}: stood in for by the harness")


def run_step(
    workflow: Mapping[str, Any],
    job: str,
    step: Mapping[str, Any],
    cwd: Path,
    context: Mapping[str, Any],
    environ: Mapping[str, str],
    script: Path,
) -> StepRun:
    """One `run:` step as the runner runs it: the script, expressions evaluated, in a file
    run by `bash -e`, in `cwd`, the `env:` layers (workflow, job, step) over `environ`."""
    script.write_text(github_value(step["run"], context, cwd))
    env = dict(environ)
    for layer in (workflow.get("env"), workflow["jobs"][job].get("env"), step.get("env")):
        env.update({key: github_value(_text(value), context, cwd) for key, value in (layer or {}).items()})
    done = subprocess.run(
        ["bash", "-e", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    outcome = "success" if done.returncode == 0 else "failure"
    return StepRun(str(step.get("name") or step["run"]), outcome, done.returncode, done.stdout + done.stderr)


def checkout(origin: Path, workspace: Path, sha: str, *, depth: int, branch: str | None = None) -> None:
    """actions/checkout@v4 on a fresh runner: a new repository, `origin` as its remote, every
    branch and tag fetched (fetch-depth 0) or only the commit, then `sha` checked out,
    detached (pull requests, a `ref:`), or as `branch` (pushes, manual runs: `-B`)."""
    workspace.mkdir(parents=True)
    git(workspace, "init", "-q")
    git(workspace, "remote", "add", "origin", origin.as_uri())
    if depth == 0:
        git(
            workspace,
            "fetch",
            "-q",
            "--prune",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        )
    else:
        into = f"refs/remotes/origin/{branch}" if branch else "refs/remotes/origin/checkout"
        git(workspace, "fetch", "-q", "--no-tags", f"--depth={depth}", "origin", f"+{sha}:{into}")
    if branch:
        git(workspace, "checkout", "-q", "--force", "-B", branch, f"refs/remotes/origin/{branch}")
    else:
        git(workspace, "checkout", "-q", "--force", "--detach", sha)
    assert git(workspace, "rev-parse", "HEAD") == sha


def actions_checkout(
    origin: Path, sha: str, branch: str | None = None
) -> Callable[[Path, Mapping[str, str]], None]:
    """The checkout of an event at `sha` (of `branch` for pushes and manual runs), as the
    step's `with:` (ref, fetch-depth: 1 by default) asks."""

    def run(workspace: Path, options: Mapping[str, str]) -> None:
        ref = options.get("ref") or None
        depth = int(options.get("fetch-depth") or 1)
        checkout(origin, workspace, ref or sha, depth=depth, branch=None if ref else branch)

    return run


# --- GitLab rules --------------------------------------------------------------------------

_GITLAB_TERM = re.compile(r'\$(\w+)(?:\s*(==|!=)\s*"([^"]*)")?')
_GITLAB_RULE_KEYS = frozenset({"if", "when", "allow_failure"})


def gitlab_jobs(pipeline: Mapping[str, Any], variables: Mapping[str, str]) -> set[str]:
    """The jobs a pipeline with these variables gets (CI_PIPELINE_SOURCE, the schedule's
    variables...): GitLab's `rules:` as the templates use them, no more."""
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, Mapping) and "script" in job}
    return {name for name, job in jobs.items() if not name.startswith(".") and _gitlab_runs(job, variables)}


def _gitlab_runs(job: Mapping[str, Any], variables: Mapping[str, str]) -> bool:
    """The first rule whose `if:` holds decides (`when: never` leaves the job out); when
    none holds, the job is left out; a job without rules always runs."""
    if "rules" not in job:
        return True
    for rule in job["rules"]:
        assert set(rule) <= _GITLAB_RULE_KEYS, f"the harness does not model {set(rule) - _GITLAB_RULE_KEYS}"
        if _gitlab_if(rule.get("if"), variables):
            return str(rule.get("when", "on_success")) != "never"
    return False


def _gitlab_if(expression: object, variables: Mapping[str, str]) -> bool:
    """`&&` of `$VAR` (set, not empty) and `$VAR == "text"` / `$VAR != "text"` (an unset
    variable is null: unequal to any text)."""
    if expression is None:
        return True
    for term in " ".join(str(expression).split()).split(" && "):
        matched = _GITLAB_TERM.fullmatch(term)
        if not matched:
            raise AssertionError(f"the harness does not evaluate the GitLab rule term {term!r}")
        name, operator, text = matched.groups()
        value = variables.get(name)
        holds = bool(value) if operator is None else (value == text) == (operator == "==")
        if not holds:
            return False
    return True


# --- a forge on loopback ------------------------------------------------------------------

FORGE_TOKEN = "s3cr3t-t0ken-value"
FORGE_REPOSITORY = "acme/shop"  # GitHub; GitLab: project 42
FORGE_PAGE = 2  # entries per page, whatever per_page asks: a few comments make several pages
_GITHUB_LIST = re.compile(r"/repos/acme/shop/issues/(\d+)/comments")
_GITHUB_ITEM = re.compile(r"/repos/acme/shop/issues/comments/(\d+)")
_GITLAB_LIST = re.compile(r"/api/v4/projects/42/merge_requests/(\d+)/notes")
_GITLAB_ITEM = re.compile(r"/api/v4/projects/42/merge_requests/(\d+)/notes/(\d+)")


@dataclass
class Forge:
    url: str
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    refuse: int | None = None  # answer every request with this status
    next_host: str | None = None  # send next-page links to this host instead

    def seed(self, *bodies: str, system: bool = False) -> None:
        for body in bodies:
            self.comments.append({"id": 100 + len(self.comments), "body": body, "system": system})


class _ForgeHandler(BaseHTTPRequestHandler):
    forge: Forge

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        forge, parts = self.forge, urlsplit(self.path)
        forge.requests.append((method, self.path))
        github = self.headers.get("Authorization") == f"Bearer {FORGE_TOKEN}"
        if forge.refuse or not (github or self.headers.get("PRIVATE-TOKEN") == FORGE_TOKEN):
            return self._json(forge.refuse or 401, {"message": "Bad credentials"})
        listing = _GITHUB_LIST.fullmatch(parts.path) or _GITLAB_LIST.fullmatch(parts.path)
        item = _GITHUB_ITEM.fullmatch(parts.path) or _GITLAB_ITEM.fullmatch(parts.path)
        if listing and method == "GET":
            return self._page(parts.path, int(parse_qs(parts.query).get("page", ["1"])[0]))
        if listing and method == "POST":
            forge.seed(self._body())
            return self._json(201, self._shown(forge.comments[-1]))
        if item and method in ("PATCH", "PUT"):
            found = next(c for c in forge.comments if c["id"] == int(item.groups()[-1]))
            found["body"] = self._body()
            return self._json(200, self._shown(found))
        return self._json(404, {"message": "Not Found"})

    def _page(self, path: str, page: int) -> None:
        entries = self.forge.comments[(page - 1) * FORGE_PAGE : page * FORGE_PAGE]
        headers = {}
        if page * FORGE_PAGE < len(self.forge.comments):
            host = self.forge.next_host or self.headers["Host"]
            headers["Link"] = f'<http://{host}{path}?per_page=100&page={page + 1}>; rel="next"'
        self._json(200, [self._shown(c) for c in entries], headers)

    def _shown(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {**comment, "html_url": f"{self.forge.url}/comment/{comment['id']}"}

    def _body(self) -> str:
        return str(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["body"])

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serve_forge() -> Iterator[Forge]:
    """The forge on a free loopback port, until the block ends."""

    class Handler(_ForgeHandler):  # its own class: each server keeps its own forge
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.forge = Forge(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Handler.forge
    finally:
        server.shutdown()
        server.server_close()
