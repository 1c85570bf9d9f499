"""Fixtures for the state tests: the store the contract suite runs against."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test virtualenv does not install releasekit; make the checkout importable. (Drop
# this once pyproject sets `pythonpath = ["."]` for pytest or the package is installed.)
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from releasekit.state.base import StateStore  # noqa: E402
from releasekit.state.local import LocalStore  # noqa: E402


@pytest.fixture(params=["local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """Every StateStore implementation; the S3 one joins the params when it exists."""
    if request.param == "local":
        return LocalStore(tmp_path / ".releasekit")
    raise AssertionError(f"no store named {request.param}")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / ".releasekit")
