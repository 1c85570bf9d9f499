"""`releasekit ci init github|gitlab` on real projects: what it writes, filled in from the
configuration; refusing to overwrite without --force, writing nothing then."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit import __version__, api
from releasekit.ci.init import GITLAB_INCLUDE
from releasekit.errors import ConfigError
from tests.support.ci import GITHUB_WORKFLOWS, initialised_repo, load, triggers
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, ENV_FILES, RELEASEKIT_YML, commit, git, make_repo, write_files

WORKFLOWS = Path(".github/workflows")


def test_github_writes_its_workflows_filled_in_for_the_chain(tmp_path: Path) -> None:
    root = initialised_repo(tmp_path / "repo")
    result = api.ci_init("github", root)
    assert [p.relative_to(root) for p in result.written] == [WORKFLOWS / name for name in GITHUB_WORKFLOWS]
    assert result.context.chain == "dev → staging → prod"
    texts = {name: (root / WORKFLOWS / name).read_text() for name in GITHUB_WORKFLOWS}
    assert not any(mark in text for text in texts.values() for mark in ("<@", "@>", "<%", "%>"))
    deploy = load(root / WORKFLOWS / "releasekit-deploy.yml")
    assert triggers(deploy)["push"]["branches"] == ["main"]
    assert deploy["jobs"]["deploy"]["steps"][-1]["run"] == "releasekit sync dev"
    promote = load(root / WORKFLOWS / "releasekit-promote.yml")
    assert triggers(promote)["workflow_dispatch"]["inputs"]["environment"]["options"] == ["staging", "prod"]
    refresh = load(root / WORKFLOWS / "releasekit-refresh.yml")
    assert [job["steps"][-1]["run"] for job in refresh["jobs"].values()] == [
        f"releasekit refresh {env}" for env in ("dev", "staging", "prod")
    ]
    pr = load(root / WORKFLOWS / "releasekit-pr.yml")
    assert f"releasekit=={__version__}" in pr["env"]["RELEASEKIT_PIP"]
    assert pr["env"]["PR_BRANCH"] == "${{ github.head_ref }}"  # GitHub's syntax passes through
    assert not list(root.rglob("*.releasekit-tmp"))


def test_gitlab_writes_its_file_and_a_gitlab_ci_yml_including_it(tmp_path: Path) -> None:
    root = initialised_repo(tmp_path / "repo")
    result = api.ci_init("gitlab", root, python_version="3.12")
    assert {p.name for p in result.written} == {"releasekit.gitlab-ci.yml", ".gitlab-ci.yml"}
    assert result.include is None
    assert load(root / ".gitlab-ci.yml") == {"include": [{"local": "/releasekit.gitlab-ci.yml"}]}
    pipeline = load(root / "releasekit.gitlab-ci.yml")
    assert pipeline[".releasekit"]["image"] == "python:3.12"
    assert pipeline["releasekit:deploy"]["script"][-1] == "releasekit sync dev"
    assert '"+refs/heads/main:refs/remotes/origin/main"' in pipeline["releasekit:check"]["script"][0]
    for env in ("staging", "prod"):
        job = pipeline[f"releasekit:promote:{env}"]
        assert job["script"][-1] == f"releasekit promote {env}"
        assert job["resource_group"] == f"releasekit-{env}"
        assert job["environment"] == {"name": env}


def test_gitlab_leaves_an_existing_gitlab_ci_yml_alone_and_prints_the_include(tmp_path: Path) -> None:
    root = initialised_repo(tmp_path / "repo")
    mine = "stages: [build, test, deploy]\nbuild:\n  stage: build\n  script: [make]\n"
    write_files(root, {".gitlab-ci.yml": mine})
    run = run_cli(root, "ci", "init", "gitlab")
    assert run.code == 0, run.text()
    assert (root / ".gitlab-ci.yml").read_text() == mine
    assert "Add this to your .gitlab-ci.yml:\ninclude:\n  - local: /releasekit.gitlab-ci.yml" in run.stdout
    # Once included, a rerun has nothing to add.
    write_files(root, {".gitlab-ci.yml": GITLAB_INCLUDE + mine})
    assert api.ci_init("gitlab", root, force=True).include is None


def test_refuses_existing_files_naming_them_writes_nothing_and_force_overwrites(tmp_path: Path) -> None:
    root = initialised_repo(tmp_path / "repo")
    assert run_cli(root, "ci", "init", "github").code == 0
    pr, gc = root / WORKFLOWS / "releasekit-pr.yml", root / WORKFLOWS / "releasekit-gc.yml"
    pr.write_text("# my edits\n")
    gc.unlink()
    refused = run_cli(root, "ci", "init", "github")
    assert refused.code == 2, refused.text()
    stderr = " ".join(refused.stderr.split())
    assert ".github/workflows/releasekit-pr.yml" in stderr and "releasekit-deploy.yml" in stderr
    assert "nothing was written" in stderr and "releasekit ci init github --force" in stderr
    assert pr.read_text() == "# my edits\n" and not gc.exists()  # all or nothing
    forced = run_cli(root, "ci", "init", "github", "--force")
    assert forced.code == 0, forced.text()
    assert "wrote .github/workflows/releasekit-gc.yml" in forced.stdout
    assert "name: releasekit pull request" in pr.read_text() and gc.exists()


def test_postgres_profile_adds_the_extra_without_rendering_its_secrets(tmp_path: Path) -> None:
    profile = (
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: warehouse.duckdb\n"
        "    prod:\n      type: postgres\n      host: db.internal\n      user: rk\n"
        "      password: \"{{ env_var('SHOP_PROD_PASSWORD') }}\"\n      dbname: shop\n      schema: x\n"
    )
    root = make_repo(tmp_path / "repo", profile=profile)  # dev -> prod
    result = api.ci_init("github", root, environ={})
    assert result.context.pip_spec == f"releasekit[postgres]=={__version__}"
    assert result.context.chain == "dev → prod"
    promote = load(root / WORKFLOWS / "releasekit-promote.yml")
    assert triggers(promote)["workflow_dispatch"]["inputs"]["environment"]["options"] == ["prod"]


def test_only_dev_leaves_the_promotion_out(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    (root / "environments" / "prod.yml").unlink()
    commit(root, "dev only")
    github = api.ci_init("github", root)
    assert github.skipped == ("releasekit-promote.yml",)
    assert not (root / WORKFLOWS / "releasekit-promote.yml").exists()
    api.ci_init("gitlab", root)
    pipeline = load(root / "releasekit.gitlab-ci.yml")
    assert "releasekit:deploy" in pipeline
    assert not [job for job in pipeline if job.startswith("releasekit:promote")]


@pytest.mark.parametrize(
    ("dev_file", "message"),
    [
        ("version: 1\nschema: dev\nbranch: 'ma\"in'\n", "characters the CI templates do not quote"),
        ("version: 1\nschema: dev\n", "names no git branch"),
    ],
)
def test_a_branch_the_templates_cannot_use_is_refused_naming_the_file(
    tmp_path: Path, dev_file: str, message: str
) -> None:
    root = make_repo(tmp_path / "repo", {"environments/dev.yml": dev_file})
    with pytest.raises(ConfigError, match=message) as raised:
        api.ci_init("github", root)
    assert str(raised.value).startswith("environments/dev.yml:branch: ")
    assert not (root / ".github").exists()


def test_a_python_version_ci_has_no_image_for_is_refused(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    bad = run_cli(root, "ci", "init", "gitlab", "--python", "3.x")
    assert bad.code == 2 and "--python '3.x'" in bad.stderr, bad.text()
    assert not (root / "releasekit.gitlab-ci.yml").exists()


def test_releasekit_yml_below_the_repository_top_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_files(root / "analytics", {**BASE_FILES, "releasekit.yml": RELEASEKIT_YML, **ENV_FILES})
    git(root, "init", "-q", "-b", "main")
    with pytest.raises(ConfigError, match="not at the top of the repository"):
        api.ci_init("github", root / "analytics" / "models")
    assert not list(root.rglob(".github"))


def test_refresh_schedule_sets_every_environment_s_cron_or_one_s(tmp_path: Path) -> None:
    root = initialised_repo(tmp_path / "repo")
    run = run_cli(
        root,
        "ci",
        "init",
        "github",
        "--refresh-schedule",
        " 0  6 * * * ",
        "--refresh-schedule",
        "prod=30 7 * * 1-5",
    )
    assert run.code == 0, run.text()
    assert (
        "Refresh schedule (cron, UTC): dev '0 6 * * *', staging '0 6 * * *', prod '30 7 * * 1-5'."
        in run.stdout
    )
    refresh = load(root / WORKFLOWS / "releasekit-refresh.yml")
    # One line per environment, as GitHub names the line that fired in github.event.schedule.
    assert triggers(refresh)["schedule"] == [
        {"cron": "0 6 * * *"},
        {"cron": "0 6 * * *"},
        {"cron": "30 7 * * 1-5"},
    ]
    assert "github.event.schedule == '30 7 * * 1-5'" in refresh["jobs"]["refresh-prod"]["if"]
    assert "github.event.schedule == '0 6 * * *'" in refresh["jobs"]["refresh-staging"]["if"]
    api.ci_init("gitlab", root, refresh_schedule=["prod=30 7 * * 1-5"])
    assert (
        'RELEASEKIT_REFRESH_ENV=prod  cron "30 7 * * 1-5"' in (root / "releasekit.gitlab-ci.yml").read_text()
    )


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 6 * *", "'0 6 * *' is not a cron schedule: it has 4 fields, not 5"),
        ("prod=0 6 * * * *", "'prod=0 6 * * * *' is not a cron schedule: it has 6 fields, not 5"),
        ("0 6 * * 1';x", "it has characters cron does not use"),
        ("qa=0 6 * * *", "names 'qa', which CI does not deploy (dev, staging, prod)"),
    ],
)
def test_a_refresh_schedule_that_is_not_five_cron_fields_is_refused_writing_nothing(
    tmp_path: Path, schedule: str, message: str
) -> None:
    root = initialised_repo(tmp_path / "repo")
    bad = run_cli(root, "ci", "init", "github", "--refresh-schedule", schedule)
    assert bad.code == 2, bad.text()
    stderr = " ".join(bad.stderr.split())
    assert message in stderr
    assert "--refresh-schedule '7 5 * * *'" in stderr or "name one of: dev, staging, prod" in stderr
    assert not (root / WORKFLOWS).exists()
