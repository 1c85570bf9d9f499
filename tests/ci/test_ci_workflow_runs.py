"""The GitHub workflows `releasekit ci init github` writes, run end to end as a runner runs
them (tests/ci/_ci_support.py: every step in order, `uses:` stood in for, the checkout
made as actions/checkout makes it, `run:` through `bash -e` with the runner's environment
and the workflow's `env:`, `if:` tested).

One world per test, copied from one built per module: a bare `origin` with main (dev's
branch), staging and prod; the developer's clone of it (`laptop`); a DuckDB warehouse and
releasekit's local state, where dev serves main. Both live beside the clones (profiles.yml
reads `../warehouse.duckdb`, releasekit.yml keeps the state in `../state`), as a warehouse
server and a state bucket live outside any clone: each job's runner is a fresh clone that
reaches them the same way. GitHub's comments API is the loopback forge."""

from __future__ import annotations

import json
import shutil
import sysconfig
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit import api
from releasekit.checks.codec import report_schema
from releasekit.ci.comment import MARKER
from tests.support.ci import (
    FORGE_REPOSITORY,
    FORGE_TOKEN,
    Forge,
    Runner,
    StepRun,
    actions_checkout,
    github_condition,
    github_value,
    initialised_repo,
    job_selected,
    load,
    run_job,
    serve_forge,
    triggers,
)
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, PROFILE, commit, git, write_files
from tests.support.warehouse_reads import marker, sql, views

pytestmark = pytest.mark.integration

PR_NUMBER = 7
BRANCH = "feature/revenue-per-order"
# What the install step installs: releasekit by name, which this venv has (editable).
VARS = {"RELEASEKIT_PIP": "releasekit", "RELEASEKIT_STATE_URL": ""}
WORKFLOWS = Path(".github/workflows")
REVENUE = BASE_FILES["models/revenue.sql"]  # one long line: lint finds three violations
REVENUE_LINTED = (
    "select\n    customer_id,\n    sum(amount_cents) as revenue_cents\nfrom {{ ref('orders') }}\ngroup by 1\n"
)


@dataclass(frozen=True)
class World:
    root: Path

    @property
    def origin(self) -> Path:
        return self.root / "origin.git"

    @property
    def laptop(self) -> Path:
        return self.root / "laptop"

    def head(self, ref: str) -> str:
        return git(self.origin, "rev-parse", f"{ref}^{{commit}}")

    def workflow(self, name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = load(self.laptop / WORKFLOWS / name)
        return loaded

    def runner(self, name: str, context: Mapping[str, Any], sha: str, branch: str | None = None) -> Runner:
        """A fresh machine whose workspace is a clone beside the developer's."""
        return Runner(self.root / name, context, actions_checkout(self.origin, sha, branch))

    def push(self, changes: Mapping[str, str], message: str) -> str:
        """Commit files on the laptop's current branch, push it, return the commit."""
        write_files(self.laptop, changes)
        sha = commit(self.laptop, message)
        git(self.laptop, "push", "-q", "origin", "HEAD")
        return sha


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """origin (main, staging and prod at one commit), the laptop's clone, dev deployed."""
    root = tmp_path_factory.mktemp("world")
    seed = initialised_repo(root / "seed")
    write_files(
        seed, {"profiles.yml": PROFILE.replace("path: warehouse.duckdb", "path: ../warehouse.duckdb")}
    )
    with open(seed / "releasekit.yml", "a", encoding="utf-8") as config:
        config.write("\nstate:\n  path: ../state\n")
    commit(seed, "the warehouse and the state outside the clone")
    written = run_cli(seed, "ci", "init", "github")
    assert written.code == 0, written.text()
    commit(seed, "releasekit CI")
    git(root, "clone", "-q", "--bare", str(seed), "origin.git")
    shutil.rmtree(seed)
    world = World(root)
    for branch in ("staging", "prod"):
        git(world.origin, "branch", branch, "main")
    git(root, "clone", "-q", str(world.origin), "laptop")
    git(world.laptop, "config", "user.name", "Ann")
    git(world.laptop, "config", "user.email", "ann@example.com")
    deployed = run_cli(world.laptop, "deploy", "dev")
    assert deployed.code == 0, deployed.text()
    return root


@pytest.fixture
def world(built: Path, tmp_path: Path) -> World:
    copy = World(Path(shutil.copytree(built, tmp_path / "world", symlinks=True)))
    git(copy.laptop, "remote", "set-url", "origin", str(copy.origin))
    return copy


@pytest.fixture
def forge() -> Iterator[Forge]:
    with serve_forge() as served:
        yield served


def github(world: World, forge: Forge | None, event_name: str, **more: Any) -> dict[str, Any]:
    """The `github` context every event shares."""
    api_url = forge.url if forge else "http://127.0.0.1:9/unused"
    return {
        "event_name": event_name,
        "repository": FORGE_REPOSITORY,
        "api_url": api_url,
        "token": FORGE_TOKEN,
        **more,
    }


def pull_request(world: World, forge: Forge, action: str) -> dict[str, Any]:
    """A pull request of BRANCH into main, as GitHub describes it to the workflow."""
    repo = {"full_name": FORGE_REPOSITORY}
    event = {
        "action": action,
        "number": PR_NUMBER,
        "pull_request": {
            "number": PR_NUMBER,
            "head": {"ref": BRANCH, "sha": world.head(BRANCH), "repo": repo},
            "base": {"ref": "main", "sha": world.head("main"), "repo": repo},
        },
    }
    more = {"actor": "ann", "head_ref": BRANCH, "base_ref": "main", "ref": f"refs/pull/{PR_NUMBER}/merge"}
    return {"github": github(world, forge, "pull_request", event=event, **more), "vars": VARS}


def outcomes(ran: list[StepRun]) -> dict[str, str]:
    return {step.name: step.outcome for step in ran}


def shown(ran: list[StepRun]) -> str:
    return "\n\n".join(f"--- {s.name}: {s.outcome} {s.code}\n{s.output}" for s in ran)


def assert_every_script_passed(workflow: Mapping[str, Any], job: str, ran: list[StepRun]) -> None:
    scripts = [str(step["name"]) for step in workflow["jobs"][job]["steps"] if "run" in step]
    assert {s.name: s.outcome for s in ran if s.name in scripts} == dict.fromkeys(scripts, "success"), shown(
        ran
    )


def output(ran: list[StepRun], name: str) -> str:
    [step] = [step for step in ran if step.name == name]
    return step.output


def editable_install() -> dict[str, int]:
    """releasekit's files in the venv's site-packages (the editable install's .pth and
    metadata), with their modification times: a reinstall would change them."""
    site = Path(sysconfig.get_paths()["purelib"])
    found = [*site.glob("releasekit*/**/*"), *site.glob("_editable_impl_releasekit*")]
    assert found, f"no releasekit install in {site}"
    return {str(path): path.stat().st_mtime_ns for path in found}


def run_check(world: World, forge: Forge, name: str, *, passed: bool) -> tuple[list[StepRun], Runner]:
    """The `check` job for the pull request's head, on a fresh runner. A failing check
    fails its step; the summary and the comment are written all the same."""
    workflow = world.workflow("releasekit-pr.yml")
    context = pull_request(world, forge, "synchronize")
    assert "synchronize" in triggers(workflow)["pull_request"]["types"]
    assert job_selected(workflow, "check", context) and not job_selected(workflow, "teardown", context)
    runner = world.runner(name, context, world.head(BRANCH))  # detached at the branch's head
    installed = editable_install()
    ran = run_job(workflow, "check", runner)
    assert editable_install() == installed, "the install step touched the editable install"
    assert outcomes(ran) == {
        "actions/checkout@v4": "success",
        "actions/setup-python@v5": "skipped",
        "AWS access to the shared state": "skipped",
        "Install releasekit": "success",
        "Bring up the pull request's environment": "success",
        "Check": "success" if passed else "failure",
        "Job summary": "success",
        "Pull request comment": "success",
        "actions/upload-artifact@v4": "skipped",
    }, shown(ran)
    assert "Requirement already satisfied: releasekit" in output(ran, "Install releasekit"), shown(ran)
    return ran, runner


def assert_reports(runner: Runner, sha: str, *, passed: bool) -> str:
    """The three reports of the check of `sha` in the runner's workspace; returns the Markdown."""
    workspace = runner.workspace
    junit = ElementTree.parse(workspace / "releasekit-junit.xml").getroot()
    assert junit.tag in ("testsuites", "testsuite") and list(junit.iter("testcase"))
    document = json.loads((workspace / "releasekit-check.json").read_text())
    Draft202012Validator(report_schema()).validate(document)
    assert (document["env"], document["git_sha"], document["base"]) == (BRANCH, sha, "dev")
    assert document["passed"] is passed
    markdown = (workspace / "releasekit-check.md").read_text()
    assert (
        markdown.startswith(MARKER)
        and sha[:7] in markdown
        and f"releasekit check: {document['verdict']}" in markdown
    )
    assert runner.summary.read_text() == markdown  # the job summary received it
    return markdown


@pytest.mark.slow
def test_a_pull_request_is_checked_commented_once_updated_in_place_and_torn_down(
    world: World, forge: Forge
) -> None:
    """Two pushes to a pull request's branch, each checked by the `check` job on a fresh
    runner: the first fails lint (the step fails; summary and comment follow all the same),
    the second passes; one comment, updated in place. Closing runs `teardown` only."""
    git(world.laptop, "switch", "-q", "-c", BRANCH)
    first_sha = world.push({"models/revenue.sql": REVENUE + "-- per order next\n"}, "revenue: a note")

    ran, runner = run_check(world, forge, "check-1", passed=False)

    record = api.Workspace.open(world.laptop).store.branch(BRANCH)
    assert record is not None and (record.branch, record.base) == (BRANCH, "dev")
    served = views(world.root, record.schema)
    assert served["orders"] == views(world.root, "dev")["orders"]  # reused from dev
    assert served["revenue"] != views(world.root, "dev")["revenue"]  # built from the branch
    first = assert_reports(runner, first_sha, passed=False)
    assert [c["body"] for c in forge.comments] == [first]
    assert "created the releasekit comment on GitHub pull request #7" in output(ran, "Pull request comment")

    second_sha = world.push({"models/revenue.sql": REVENUE_LINTED}, "revenue: lint fixed")  # a new push
    ran, runner = run_check(world, forge, "check-2", passed=True)

    second = assert_reports(runner, second_sha, passed=True)
    again = api.Workspace.open(world.laptop).store.branch(BRANCH)
    assert again is not None and again.schema == record.schema  # the same environment, checked again
    assert second != first and [c["body"] for c in forge.comments] == [second]  # one, updated
    assert forge.requests[-1] == ("PATCH", f"/repos/{FORGE_REPOSITORY}/issues/comments/100")
    assert "updated the releasekit comment" in output(ran, "Pull request comment")

    workflow = world.workflow("releasekit-pr.yml")
    closed = pull_request(world, forge, "closed")
    assert job_selected(workflow, "teardown", closed) and not job_selected(workflow, "check", closed)
    ran = run_job(workflow, "teardown", world.runner("teardown", closed, world.head(BRANCH)))
    assert_every_script_passed(workflow, "teardown", ran)
    assert git(world.root / "teardown", "rev-parse", "HEAD") == world.head("main")  # the base's config
    assert api.Workspace.open(world.laptop).store.branch(BRANCH) is None
    gone = f"select 1 from information_schema.schemata where schema_name = '{record.schema}'"
    assert not sql(world.root, gone)


@pytest.mark.slow
def test_a_push_to_main_deploys_dev_and_a_manual_run_promotes_it_to_staging(world: World) -> None:
    """A merge pushed to main: the deploy workflow syncs dev to it. Then the promote
    workflow, run by hand for staging: staging serves dev's release, and origin has the
    moved staging branch and the release tag, signed by whoever started the run."""
    deploy = world.workflow("releasekit-deploy.yml")
    assert triggers(deploy)["push"]["branches"] == ["main"]
    sha = world.push({"models/revenue.sql": REVENUE_LINTED}, "revenue: one column a line")
    pushed = {
        "github": github(world, None, "push", ref="refs/heads/main", sha=sha, actor="ann"),
        "vars": VARS,
    }
    assert job_selected(deploy, "deploy", pushed)

    ran = run_job(deploy, "deploy", world.runner("deploy", pushed, sha, "main"))

    assert_every_script_passed(deploy, "deploy", ran)
    assert marker(world.root, "dev")[1:] == ("dev", sha)
    assert api.releases(api.Workspace.open(world.laptop), "dev")[-1].git_sha == sha

    promote = world.workflow("releasekit-promote.yml")
    assert "staging" in triggers(promote)["workflow_dispatch"]["inputs"]["environment"]["options"]
    main = world.head("main")
    dispatched = {
        "github": github(world, None, "workflow_dispatch", ref="refs/heads/main", sha=main, actor="grace"),
        "inputs": {"environment": "staging"},
        "vars": VARS,
    }
    ran = run_job(promote, "promote", world.runner("promote", dispatched, main, "main"))

    assert_every_script_passed(promote, "promote", ran)
    entry = api.releases(api.Workspace.open(world.laptop), "staging")[-1]
    assert (entry.git_sha, entry.promotion["from"], entry.promotion["branch_update"]) == (
        sha,
        "dev",
        "fast-forward",
    )
    assert entry.who.startswith("grace (GitHub Actions)")
    assert marker(world.root, "staging")[1:] == ("staging", sha)
    assert views(world.root, "staging") == views(world.root, "dev")  # the tables dev tested
    assert world.head("staging") == sha
    tag = f"release/staging/{entry.release_id}"
    assert world.head(tag) == sha
    tagger = git(world.origin, "for-each-ref", "--format=%(taggername)", f"refs/tags/{tag}")
    assert tagger == "grace (GitHub Actions)"


def test_a_scheduled_refresh_runs_the_live_commit_of_its_environment(world: World) -> None:
    """dev's line of the refresh schedule fires while main is ahead of what dev serves:
    only dev's job runs, in a fresh clone of main, and refreshes the commit dev serves,
    which needs the full history the checkout fetches. With only main's head (GitHub's
    default checkout) it could not."""
    served = world.head("main")
    world.push({"models/revenue.sql": REVENUE_LINTED}, "revenue: one column a line (not deployed)")
    refresh = world.workflow("releasekit-refresh.yml")
    [cron] = [line["cron"] for line in triggers(refresh)["schedule"] if line["cron"] == "7 5 * * *"]
    event = {"schedule": cron}
    head = world.head("main")
    scheduled = {
        "github": github(world, None, "schedule", event=event, ref="refs/heads/main", sha=head, actor="ann"),
        "vars": VARS,
    }
    assert [job for job in refresh["jobs"] if job_selected(refresh, job, scheduled)] == ["refresh-dev"]

    ran = run_job(refresh, "refresh-dev", world.runner("refresh", scheduled, head, "main"))

    assert_every_script_passed(refresh, "refresh-dev", ran)
    assert "Nothing to refresh" in output(ran, "Refresh dev"), shown(ran)  # seeds only: no source changed
    assert marker(world.root, "dev")[1:] == ("dev", served)  # still the commit dev served

    shallow = {**refresh["jobs"]["refresh-dev"]}
    shallow["steps"] = [{**shallow["steps"][0], "with": {"fetch-depth": 1}}, *shallow["steps"][1:]]
    cut = {**refresh, "jobs": {"refresh-dev": shallow}}
    ran = run_job(cut, "refresh-dev", world.runner("refresh-shallow", scheduled, head, "main"))
    assert outcomes(ran)["Refresh dev"] == "failure", shown(ran)
    assert f"could not check out commit {served[:12]}" in output(ran, "Refresh dev"), shown(ran)


@pytest.mark.parametrize(
    ("condition", "failed", "report", "runs"),
    [
        ("${{ !cancelled() && hashFiles('releasekit-check.md') != '' }}", True, True, True),
        ("${{ !cancelled() && hashFiles('releasekit-check.md') != '' }}", False, False, False),
        (None, True, True, False),  # success() is implied
        ("github.event.action != 'closed'", True, True, False),
        ("github.event.action != 'closed'", False, True, True),
        ("github.event.action == 'closed'", False, True, False),
        ("github.event.action == 'closed' || github.event.action == 'synchronize'", False, True, True),
        ("github.event.action == 'closed' || github.event.action == 'synchronize'", True, True, False),
        ("github.event.schedule == '7 5 * * *' || github.event.action == 'opened'", False, True, False),
    ],
)
def test_the_harness_tests_if_as_github_does(
    tmp_path: Path, condition: str | None, failed: bool, report: bool, runs: bool
) -> None:
    if report:
        (tmp_path / "releasekit-check.md").write_text(MARKER)
    context = {"github": {"event": {"action": "synchronize"}}}
    assert github_condition(condition, context, tmp_path, failed=failed) is runs


def test_the_harness_refuses_what_it_does_not_model(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="does not evaluate"):
        github_condition("contains(github.event.pull_request.labels, 'x')", {}, tmp_path)
    with pytest.raises(AssertionError, match="parentheses"):
        github_condition("(github.event.action == 'a' || true) && false", {}, tmp_path)
    with pytest.raises(AssertionError, match=r"context has no github\.head_ref"):
        github_value("${{ github.head_ref }}", {"github": {}})
    assert github_value("${{ vars.UNSET || 'fallback' }}-${{ secrets.UNSET }}", {}) == "fallback-"
