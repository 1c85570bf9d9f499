"""The rules that judge a branch come from the base, not the branch: `releasekit check`
reads the `checks:` policy from the base environment's deployed commit, reports a branch
that changes a policy, and records what it covered and the content it verified. Real git,
real dbt on DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit import api
from releasekit.api import Workspace
from releasekit.checks.codec import report_schema
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, ENV_FILES, RELEASEKIT_YML, commit, git, make_repo, write_files

pytestmark = pytest.mark.integration

DEV = ENV_FILES["environments/dev.yml"]
# Two orders with id 1: the unique test on orders.id fails.
FAILING_TEST = {"seeds/raw_orders.csv": BASE_FILES["seeds/raw_orders.csv"] + "1,2,50\n"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("policy") / "repo")
    assert api.deploy(Workspace.open(root), "dev").ok
    return root


@pytest.fixture
def branch(repo: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "policy/" + request.node.name.replace("[", "-").rstrip("]")
    git(repo, "switch", "-q", "-c", name, "main")
    yield name
    git(repo, "switch", "-q", "main")


@pytest.mark.parametrize(
    ("policy", "shown"),
    [
        ("checks:\n  build: off\n", "checks.build off (base: error)"),
        ("checks: {build: warn}\n", "checks.build warn (base: error)"),
    ],
    ids=["build-off", "build-warn"],
)
def test_a_branch_cannot_loosen_the_policy_that_judges_it(
    repo: Path, branch: str, tmp_path: Path, policy: str, shown: str
) -> None:
    write_files(repo, {**FAILING_TEST, "environments/dev.yml": DEV + policy})
    commit(repo, "loosen the checks and break a test")

    run = run_cli(
        repo, "check", "--json", str(tmp_path / "report.json"), "--markdown", str(tmp_path / "r.md")
    )

    assert run.code == 1, run.text()
    document = json.loads((tmp_path / "report.json").read_text())
    Draft202012Validator(report_schema()).validate(document)
    assert document["verdict"] == "FAILED: build"
    build = next(c for c in document["checks"] if c["name"] == "build")
    assert build["status"] == "failed" and build["severity"] == "error"
    change = f"environments/dev.yml: {shown}"
    assert any(change in note and "applies once merged and deployed" in note for note in document["notes"])
    assert change in run.text()  # the terminal shows it too
    assert change in (tmp_path / "r.md").read_text()


def test_a_full_check_records_what_it_ran_and_the_project_tree(repo: Path, branch: str) -> None:
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- a comment\n"})
    sha = commit(repo, "comment")

    report = api.check(Workspace.open(repo))

    [record] = Workspace.open(repo).store.checks(sha)
    assert record.ran == ("lint", "build", "logic", "diff") and record.skipped == {}
    assert record.full and record.passed == report.passed
    assert record.content == git(repo, "rev-parse", f"{sha}^{{tree}}")  # the project is at the top
    assert Workspace.open(repo).store.checks_with_content(record.content) == [record]


def test_a_check_with_only_is_recorded_as_partial(repo: Path, branch: str) -> None:
    write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- another\n"})
    sha = commit(repo, "comment")

    report = api.check(Workspace.open(repo), only=["logic"])

    assert report.passed  # the user's verdict of what ran is as before
    [record] = Workspace.open(repo).store.checks(sha)
    assert record.ran == ("logic",) and not record.full
    assert record.skipped == {"lint": "only", "build": "only", "diff": "only"}


def test_a_check_turned_off_by_the_base_policy_still_counts_as_full(repo: Path, branch: str) -> None:
    # Turned off on main and deployed: now it is the base's policy.
    git(repo, "switch", "-q", "main")
    write_files(repo, {"environments/dev.yml": DEV + "checks:\n  lint: off\n"})
    main_sha = commit(repo, "dev: no lint")
    try:
        assert api.deploy(Workspace.open(repo), "dev").ok
        git(repo, "switch", "-q", "-c", f"{branch}-2", main_sha)
        write_files(repo, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "-- third\n"})
        sha = commit(repo, "comment")

        report = api.check(Workspace.open(repo))

        assert report.check("lint").status == "skipped"  # type: ignore[union-attr]
        assert not any("changes a policy" in note for note in report.notes)
        [record] = Workspace.open(repo).store.checks(sha)
        assert record.skipped == {"lint": "off"} and record.full
    finally:
        git(repo, "switch", "-q", "main")
        git(repo, "revert", "--no-edit", main_sha)
        assert api.deploy(Workspace.open(repo), "dev").ok
        git(repo, "switch", "-q", branch)


def test_a_base_deployed_dirty_from_a_commit_without_config_judges_by_the_defaults(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_files(root, {**BASE_FILES, ".gitignore": ".releasekit/\n*.duckdb\n*.wal\ntarget/\nlogs/\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    first = commit(root, "the dbt project, no releasekit yet")
    write_files(root, {"releasekit.yml": RELEASEKIT_YML, **ENV_FILES})  # not committed: dev is dirty
    deployed = api.deploy(Workspace.open(root), "dev", allow_dirty=True)
    assert deployed.ok and api.releases(Workspace.open(root), "dev")[-1].git_sha == f"{first}-dirty"
    git(root, "switch", "-q", "-c", "feature")
    write_files(root, {**FAILING_TEST, "environments/dev.yml": DEV + "checks:\n  build: off\n"})
    commit(root, "releasekit, with the build turned off, and a failing test")

    report = api.check(Workspace.open(root))

    assert not report.passed and report.verdict == "FAILED: build"
    assert any(f"commit {first[:12]} has no releasekit configuration" in note for note in report.notes)
    assert any("environments/dev.yml: checks.build off (base: error)" in note for note in report.notes)
