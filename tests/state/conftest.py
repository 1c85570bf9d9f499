"""Fixtures for the state tests: the store the contract suite runs against."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.state.base import StateStore
from releasekit.state.local import LocalStore


@pytest.fixture(params=["local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """Every StateStore implementation; the S3 one joins the params when it exists."""
    if request.param == "local":
        return LocalStore(tmp_path / ".releasekit")
    raise AssertionError(f"no store named {request.param}")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / ".releasekit")
