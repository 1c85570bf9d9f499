"""releasekit's configuration as a commit holds it, read from git without a checkout, and
how a branch's policies differ from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.config.loader import load_config
from releasekit.environments.policy import config_at, policy_changes, project_content
from releasekit.errors import ConfigError
from releasekit.gitops.repo import GitRepo
from tests.support.projects import ENV_FILES, RELEASEKIT_YML, commit, git, write_files

DEV = ENV_FILES["environments/dev.yml"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_files(root, {"project/dbt_project.yml": "name: shop\n", "README.md": "hi\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    return root


def test_a_commit_without_configuration_has_none(repo: Path) -> None:
    sha = commit(repo, "no releasekit")
    assert config_at(GitRepo(repo), repo, sha) is None
    assert config_at(GitRepo(repo), repo, f"{sha}-dirty") is None


def test_the_files_are_read_at_the_commit_not_from_the_checkout(repo: Path) -> None:
    write_files(
        repo,
        {
            "releasekit.yml": RELEASEKIT_YML + "environments_dir: envs\n",
            "envs/dev.yml": DEV + "checks:\n  lint: warn\n",
        },
    )
    sha = commit(repo, "config")
    write_files(repo, {"envs/dev.yml": DEV + "checks:\n  build: off\n"})  # the checkout moves on

    at = config_at(GitRepo(repo), repo, sha)

    assert at is not None and at.environments["dev"].checks.lint == "warn"
    assert at.environments["dev"].checks.build == "error"
    changes = policy_changes(at, load_config(repo, environ={}))
    assert changes == [
        "envs/dev.yml: checks.lint error (base: warn)",
        "envs/dev.yml: checks.build off (base: error)",
    ]


def test_a_commit_whose_configuration_does_not_validate_is_an_error_naming_it(repo: Path) -> None:
    write_files(
        repo, {"releasekit.yml": RELEASEKIT_YML, "environments/dev.yml": DEV + "checks:\n  build: maybe\n"}
    )
    sha = commit(repo, "bad config")
    with pytest.raises(ConfigError, match=rf"at commit {sha[:12]} does not load:\n.*environments/dev.yml"):
        config_at(GitRepo(repo), repo, sha)


def test_the_project_content_is_its_folders_tree_and_a_dirty_tree_has_none(repo: Path) -> None:
    sha = commit(repo, "project")
    write_files(repo, {"README.md": "changed outside the project\n"})
    other = commit(repo, "readme")
    content = project_content(GitRepo(repo), repo / "project", sha)
    assert content == git(repo, "rev-parse", f"{sha}:project")
    assert project_content(GitRepo(repo), repo / "project", other) == content  # the project did not change
    assert project_content(GitRepo(repo), repo, other) != project_content(GitRepo(repo), repo, sha)
    assert project_content(GitRepo(repo), repo / "project", f"{sha}-dirty") is None
