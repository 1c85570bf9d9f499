"""Repositories with releasekit set up, and the CI files `releasekit ci init` writes into them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from projects import BASE_FILES, commit, git, write_files

from releasekit import api

GITHUB_WORKFLOWS = (
    "releasekit-deploy.yml",
    "releasekit-gc.yml",
    "releasekit-pr.yml",
    "releasekit-promote.yml",
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
