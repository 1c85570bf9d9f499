"""Fixtures for the lint adapter's tests: the shop dbt project written into tmp_path, linted
by real sqlfluff."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.lint_project import MakeProject
from tests.support.projects import BASE_FILES, write_files


@pytest.fixture(autouse=True)
def _no_user_sqlfluff_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlfluff also reads ~/.sqlfluff and its user config folder: point both at an empty home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write the shop project at tmp_path/repo/<subdir> (plus or replacing `files`, paths
    relative to the project) and `around` (relative to tmp_path/repo); return the project."""

    def make(
        files: Mapping[str, str] | None = None,
        *,
        around: Mapping[str, str] | None = None,
        subdir: str = "dbt",
    ) -> Path:
        repo = tmp_path / "repo"
        project = repo / subdir
        write_files(project, {**BASE_FILES, **(files or {})})
        write_files(repo, around or {})
        return project

    return make
