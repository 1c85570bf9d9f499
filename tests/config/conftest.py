"""Fixtures for the config tests: real releasekit projects written into tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.config_files import CONFIG, ENVIRONMENTS, Write


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write files (path -> text, dedented) under tmp_path; return tmp_path."""

    def write_files(files: Mapping[str, str]) -> Path:
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return tmp_path

    return write_files


@pytest.fixture
def project(write: Write) -> Path:
    """A valid project using every key: dev -> staging -> prod."""
    return write({"releasekit.yml": CONFIG, **ENVIRONMENTS})
