"""Branch names written to break out of a shell, through the pull-request workflow as
GitHub's runner runs it: each `run:` step that uses the branch goes through `bash -e` with
the environment the workflow's `env:` blocks give it (`${{ github.head_ref }}` replaced by
the branch name), against a real deployed dev on DuckDB with local state.

Nothing of the names may execute: no `hello` line, no marker file, no `uid=` from `id`;
the environment's schema is the one `branch_schema` derives, made of `[a-z0-9_]` only.
A control runs the unsafe form (the expression pasted into the script) and sees `hello`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from releasekit import api
from releasekit.warehouse.naming import branch_schema
from tests.support.ci import load, run_step, runner_environ
from tests.support.cli_runs import run_cli
from tests.support.projects import commit, git, make_repo
from tests.support.warehouse_reads import sql, views

pytestmark = pytest.mark.integration

HOSTILE = ('zzz";echo${IFS}"hello";#', "feat/$(id)", "x$(touch${IFS}pwned)")
PR_NUMBER = 7


def run_steps(repo: Path, workflow: dict[str, Any], job: str, branch: str) -> list[str]:
    """Run the job's `run:` steps that read the branch, as the runner would (see
    _ci_support.run_step), in the checkout. Returns what each printed; every one must pass
    (the check may find problems: exit 1)."""
    context = {"github": {"head_ref": branch, "event": {"pull_request": {"number": PR_NUMBER}}}}
    environ = runner_environ(repo.parent / "runner", repo, context["github"])
    outputs = []
    steps = [s for s in workflow["jobs"][job]["steps"] if re.search(r"PR_BRANCH|head_ref", s.get("run", ""))]
    assert steps, f"job {job} has no step that reads the branch"
    for index, step in enumerate(steps):
        script = repo.parent / f"{job}-{index}.sh"
        done = run_step(workflow, job, step, repo, context, environ, script)
        assert done.code in (0, 1), f"{done.name}: exit {done.code}\n{done.output}"
        outputs.append(done.output)
    return outputs


def assert_nothing_ran(repo: Path, outputs: list[str]) -> None:
    text = "\n".join(outputs)
    assert "hello" not in [line.strip() for line in text.splitlines()]
    assert "uid=" not in text
    assert not list(repo.parent.rglob("pwned"))


@pytest.mark.slow
def test_hostile_branch_names_run_through_the_pull_request_workflow(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    api.ci_init("github", repo)
    commit(repo, "CI")
    deployed = run_cli(repo, "deploy", "dev")
    assert deployed.code == 0, deployed.text()
    workflow = load(repo / ".github/workflows/releasekit-pr.yml")
    for branch in HOSTILE:
        assert git(repo, "check-ref-format", "--branch", branch) == branch  # git takes it as it is
        git(repo, "switch", "-q", "-c", branch)
        with open(repo / "models/revenue.sql", "a") as model:
            model.write("-- changed on the branch\n")
        commit(repo, "a change to check")
        git(repo, "switch", "-q", "--detach")  # the runner checks out a commit, not the branch

        checked = run_steps(repo, workflow, "check", branch)
        assert_nothing_ran(repo, checked)
        assert f"Checks of {branch}" in checked[-1]
        record = api.Workspace.open(repo).store.branch(branch)
        assert record is not None and record.branch == branch
        assert record.schema == branch_schema(branch) and re.fullmatch(
            r"br_[a-z0-9_]+__[0-9a-f]{10}", record.schema
        )
        assert "revenue" in views(repo, record.schema)

        torn_down = run_steps(repo, workflow, "teardown", branch)
        assert_nothing_ran(repo, torn_down)
        assert api.Workspace.open(repo).store.branch(branch) is None
        assert not sql(
            repo, f"select 1 from information_schema.schemata where schema_name = '{record.schema}'"
        )
        again = run_steps(repo, workflow, "teardown", branch)  # --missing-ok: nothing left, exit 0
        assert "no branch environment, nothing to drop" in again[0]
        for report in repo.glob("releasekit-*.*"):  # the next job's runner starts clean
            report.unlink()
        git(repo, "switch", "-q", "main")


@pytest.mark.parametrize("branch", HOSTILE)
def test_the_harness_sees_each_injection_when_the_expression_is_in_the_script(
    tmp_path: Path, branch: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    unsafe = {"jobs": {"unsafe": {"steps": [{"name": "unsafe", "run": 'echo "on ${{ github.head_ref }}"'}]}}}
    outputs = run_steps(repo, unsafe, "unsafe", branch)
    with pytest.raises(AssertionError):
        assert_nothing_ran(repo, outputs)
