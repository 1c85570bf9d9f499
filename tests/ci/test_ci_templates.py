"""The rendered CI files: valid for GitHub and GitLab by their own schemas (check-jsonschema
ships them, so this runs offline), and safe: untrusted text never reaches a script except
as a quoted variable, no pull_request_target, least permissions job by job."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from releasekit import api
from releasekit.ci import comment
from releasekit.ci.templates import render, yaml_scalar
from releasekit.reporting import markdown
from tests.support.ci import (
    GITHUB_WORKFLOWS,
    github_value,
    gitlab_jobs,
    initialised_repo,
    job_selected,
    load,
    triggers,
)

CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
# Values a pull request's author chooses: they must never be expanded into a script.
UNTRUSTED = re.compile(r"github\.head_ref|github\.event\.pull_request\.(title|body|head\.(ref|label))")
GITLAB_UNTRUSTED = re.compile(
    r"\$\{?CI_(MERGE_REQUEST_SOURCE_BRANCH_NAME|MERGE_REQUEST_TITLE|COMMIT_REF_NAME)"
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = initialised_repo(tmp_path_factory.mktemp("ci") / "repo")
    api.ci_init("github", root)
    api.ci_init("gitlab", root)
    return root


def workflows(repo: Path) -> list[Path]:
    return [repo / ".github" / "workflows" / name for name in GITHUB_WORKFLOWS]


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", schema, *map(str, paths)], capture_output=True, text=True
    )


def test_every_github_workflow_validates_against_the_github_workflow_schema(repo: Path) -> None:
    result = check_jsonschema("vendor.github-workflows", *workflows(repo))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gitlab_files_validate_against_the_gitlab_ci_schema(repo: Path) -> None:
    result = check_jsonschema("vendor.gitlab-ci", repo / "releasekit.gitlab-ci.yml", repo / ".gitlab-ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path, repo: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (repo / ".github/workflows/releasekit-pr.yml").read_text().replace("runs-on:", "run-on:")
    )
    assert check_jsonschema("vendor.github-workflows", broken).returncode == 1


@pytest.mark.parametrize("name", GITHUB_WORKFLOWS)
def test_github_workflow_is_safe(repo: Path, name: str) -> None:
    path = repo / ".github" / "workflows" / name
    workflow = load(path)
    assert "pull_request_target" not in triggers(workflow)
    assert "pull_request_target" not in yaml.safe_dump(workflow)  # anywhere but in comments
    assert workflow["permissions"] == {}, "no permission unless a job asks for it"
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}: job {job_name} states its permissions"
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}: an expression inside run: in {step}"
    for where, text in _strings(workflow):
        if UNTRUSTED.search(text):
            assert where[-2] == "env", f"{name}: untrusted {text!r} at {where}, outside env:"


def test_gitlab_scripts_use_branch_names_only_inside_double_quotes(repo: Path) -> None:
    pipeline = load(repo / "releasekit.gitlab-ci.yml")
    lines = [
        line
        for job in pipeline.values()
        if isinstance(job, dict)
        for key in ("before_script", "script", "after_script")
        for entry in job.get(key, [])
        for line in entry.splitlines()
    ]
    used = [line for line in lines if GITLAB_UNTRUSTED.search(line)]
    assert len(used) >= 3  # env up, check, env down
    for line in used:
        assert not GITLAB_UNTRUSTED.search(re.sub(r'"[^"]*"', '""', line)), f"unquoted in {line!r}"


def test_github_promotion_jobs_are_bound_to_environments_and_never_cancelled(repo: Path) -> None:
    promote = load(repo / ".github/workflows/releasekit-promote.yml")
    assert promote["concurrency"] == {
        "group": "releasekit-deploy-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    assert promote["jobs"]["promote"]["environment"] == "${{ inputs.environment }}"
    pr = load(repo / ".github/workflows/releasekit-pr.yml")
    assert pr["concurrency"]["cancel-in-progress"] == "${{ github.event.action != 'closed' }}"


def test_yaml_filter_quotes_any_value_as_one_scalar() -> None:
    hostile = 'a": b, c]\n# d\n- e: {f}'
    assert yaml.safe_load(f"k: [{yaml_scalar(hostile)}]") == {"k": [hostile]}
    assert yaml.safe_load(f"k: {yaml_scalar(hostile)}") == {"k": hostile}


def test_an_undefined_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("github", {"pip_spec": "releasekit"})


def test_the_comment_marker_is_the_one_the_markdown_report_starts_with() -> None:
    assert comment.MARKER == markdown.MARKER


def _strings(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string in a parsed YAML document, with its path of keys."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*where, index))
    elif isinstance(node, str):
        yield where, node


def test_workflows_that_fingerprint_pass_the_teams_fingerprint_key(repo: Path) -> None:
    """Every runner hashes env_var() values with the one key from the repository's secrets,
    so a version built by one job is reused by the next."""
    for path in workflows(repo):
        env = load(path).get("env", {})
        fingerprints = "gc" not in path.name  # gc builds nothing and plans nothing
        expected = "${{ secrets.RELEASEKIT_FINGERPRINT_KEY }}" if fingerprints else None
        assert env.get("RELEASEKIT_FINGERPRINT_KEY") == expected, path.name
    assert "RELEASEKIT_FINGERPRINT_KEY (masked)" in (repo / "releasekit.gitlab-ci.yml").read_text()


ENVS = ("dev", "staging", "prod")
DEFAULT_CRONS = {"dev": "7 5 * * *", "staging": "27 5 * * *", "prod": "47 5 * * *"}


def github_deploy_group(repo: Path, env: str) -> Any:
    """The concurrency of the workflow that deploys `env`: on push for dev, by promotion
    for the others."""
    if env == "dev":
        return load(repo / ".github/workflows/releasekit-deploy.yml")["concurrency"]
    promote = load(repo / ".github/workflows/releasekit-promote.yml")["concurrency"]
    return {**promote, "group": github_value(promote["group"], {"inputs": {"environment": env}})}


def test_github_refreshes_each_environment_in_its_deploy_group_never_cancelled(repo: Path) -> None:
    refresh = load(repo / ".github/workflows/releasekit-refresh.yml")
    deploy = load(repo / ".github/workflows/releasekit-deploy.yml")
    assert "concurrency" not in refresh  # per job: each environment its own group
    assert [job for job in refresh["jobs"]] == [f"refresh-{env}" for env in ENVS]
    for env in ENVS:
        job = refresh["jobs"][f"refresh-{env}"]
        assert job["steps"][-1] == {"name": f"Refresh {env}", "run": f"releasekit refresh {env}"}
        assert job["concurrency"] == github_deploy_group(repo, env)
        assert job["concurrency"] == {"group": f"releasekit-deploy-{env}", "cancel-in-progress": False}
        assert job["steps"][0]["with"]["fetch-depth"] == 0  # the live commit may be on another branch
        # The deploy job's access: its permissions, state, warehouse env, AWS step, install.
        assert job["permissions"] == deploy["jobs"]["deploy"]["permissions"]
        assert job["steps"][:-1] == deploy["jobs"]["deploy"]["steps"][:-1]
    assert refresh["env"] == deploy["env"]


def test_github_runs_each_environment_s_refresh_on_its_own_schedule_or_by_hand(repo: Path) -> None:
    refresh = load(repo / ".github/workflows/releasekit-refresh.yml")
    on = triggers(refresh)
    assert on["schedule"] == [{"cron": cron} for cron in DEFAULT_CRONS.values()]
    dispatch = on["workflow_dispatch"]["inputs"]["environment"]
    assert (dispatch["required"], dispatch["default"]) == (False, "all environments")
    assert dispatch["options"] == ["all environments", *ENVS]

    def selected(context: dict[str, Any]) -> list[str]:
        return [env for env in ENVS if job_selected(refresh, f"refresh-{env}", context)]

    for env, cron in DEFAULT_CRONS.items():
        assert selected({"github": {"event_name": "schedule", "event": {"schedule": cron}}}) == [env]
    assert selected({"github": {"event_name": "schedule", "event": {"schedule": "0 0 * * *"}}}) == []
    by_hand = {"github": {"event_name": "workflow_dispatch", "event": {}}}
    assert selected({**by_hand, "inputs": {"environment": "staging"}}) == ["staging"]
    assert selected({**by_hand, "inputs": {"environment": "all environments"}}) == list(ENVS)


def test_gitlab_refreshes_each_environment_in_its_deploy_resource_group(repo: Path) -> None:
    pipeline = load(repo / "releasekit.gitlab-ci.yml")
    deploys = {"dev": pipeline["releasekit:deploy"]} | {
        env: pipeline[f"releasekit:promote:{env}"] for env in ENVS[1:]
    }
    for env in ENVS:
        job = pipeline[f"releasekit:refresh:{env}"]
        assert job["resource_group"] == deploys[env]["resource_group"] == f"releasekit-{env}"
        assert job["script"][-1] == f"releasekit refresh {env}"
        assert job["environment"] == {"name": env, "action": "access"}
        assert not job.get("interruptible")  # never cancelled by a newer pipeline
        assert job["extends"] == deploys[env]["extends"]  # the same state, warehouse and clone


def test_gitlab_schedules_run_only_the_refresh_they_name_and_deploys_never_run_on_one(repo: Path) -> None:
    pipeline = load(repo / "releasekit.gitlab-ci.yml")
    schedule = {"CI_PIPELINE_SOURCE": "schedule"}
    for env in ENVS:
        named = {**schedule, "RELEASEKIT_REFRESH_ENV": env}
        assert gitlab_jobs(pipeline, named) == {f"releasekit:refresh:{env}"}
    assert gitlab_jobs(pipeline, schedule) == {"releasekit:gc"}  # a schedule without the variable
    assert gitlab_jobs(pipeline, {**schedule, "RELEASEKIT_REFRESH_ENV": ""}) == {"releasekit:gc"}
    assert gitlab_jobs(pipeline, {**schedule, "RELEASEKIT_REFRESH_ENV": "qa"}) == {
        "releasekit:refresh:unknown"
    }
    pushed = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
    assert gitlab_jobs(pipeline, pushed) == {
        "releasekit:deploy",
        "releasekit:promote:staging",
        "releasekit:promote:prod",
    }
    # A push that carries the variable (a project-wide one, say) refreshes nothing.
    assert gitlab_jobs(pipeline, {**pushed, "RELEASEKIT_REFRESH_ENV": "dev"}) == gitlab_jobs(pipeline, pushed)
    merge_request = {"CI_PIPELINE_SOURCE": "merge_request_event"}
    assert gitlab_jobs(pipeline, merge_request) == {"releasekit:check", "releasekit:stop"}


def test_gitlab_s_header_says_how_to_schedule_each_refresh(repo: Path) -> None:
    header = (repo / "releasekit.gitlab-ci.yml").read_text().split("\nvariables:")[0]
    for env, cron in DEFAULT_CRONS.items():
        assert f"RELEASEKIT_REFRESH_ENV={env}  cron {cron!r}".replace("'", '"') in header
    assert "Pipeline schedules" in header and "/pipeline_schedules/:schedule_id/variables" in header


def test_the_gitlab_harness_refuses_rules_it_does_not_model() -> None:
    job = {"script": ["true"], "rules": [{"if": '$A == "x" || $B'}]}
    with pytest.raises(AssertionError, match="does not evaluate"):
        gitlab_jobs({"job": job}, {})
    with pytest.raises(AssertionError, match="does not model"):
        gitlab_jobs({"job": {"script": ["true"], "rules": [{"if": "$A", "changes": ["x"]}]}}, {})
