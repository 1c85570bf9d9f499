"""`releasekit init` on an existing dbt project in git, then a first deploy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from releasekit import api
from releasekit.errors import ConfigError
from tests.support.projects import BASE_FILES, branch_here, commit, git, write_files

pytestmark = pytest.mark.integration

RELEASEKIT = str(Path(sys.executable).parent / "releasekit")


def bare_project(root: Path) -> Path:
    write_files(root, {**BASE_FILES, ".gitignore": "*.duckdb\n*.wal\ntarget/\nlogs/\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ann")
    git(root, "config", "user.email", "ann@example.com")
    commit(root, "dbt project")
    return root


def test_init_then_deploy_works_with_a_single_target_profile(tmp_path: Path) -> None:
    root = bare_project(tmp_path)
    result = api.init(root)
    names = {path.name for path in result.written}
    assert {"releasekit.yml", "dev.yml", "staging.yml", "prod.yml", ".gitignore"} <= names
    assert ".releasekit/" in (root / ".gitignore").read_text()
    commit(root, "releasekit config")
    branch_here(root, "prod")  # prod deploys only its branch head (promotes_from: staging)
    deployed = subprocess.run([RELEASEKIT, "deploy", "prod"], cwd=root, capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "prod is now release 1" in deployed.stdout


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    root = bare_project(tmp_path)
    api.init(root)
    (root / "releasekit.yml").write_text("version: 1\n# mine\n")
    with pytest.raises(ConfigError, match="--force"):
        api.init(root)
    assert "# mine" in (root / "releasekit.yml").read_text()
    api.init(root, force=True)
    assert "# mine" not in (root / "releasekit.yml").read_text()


def test_dev_follows_the_repositorys_default_branch_staging_and_prod_their_own(tmp_path: Path) -> None:
    root = bare_project(tmp_path / "repo")
    git(root, "branch", "-m", "main", "trunk")
    api.init(root)
    config = api.Workspace.open(root).config
    assert [(e.name, e.branch, e.promotes_from) for e in config.environments.values()] == [
        ("dev", "trunk", None),
        ("staging", "staging", "dev"),
        ("prod", "prod", "staging"),
    ]
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(root), str(remote)], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
    git(clone, "switch", "-q", "-c", "feature")  # not the default branch, which origin names
    api.init(clone, force=True)
    assert api.Workspace.open(clone).config.environment("dev").branch == "trunk"
