"""Fixtures for the state tests: the store the contract suite runs against."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.state.base import StateStore
from releasekit.state.local import LocalStore
from tests.support.s3 import Bucket


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """Every StateStore implementation: the local folder, and a bucket on moto's server."""
    if request.param == "local":
        return LocalStore(tmp_path / ".releasekit")
    bucket: Bucket = request.getfixturevalue("bucket")
    return bucket.store()


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / ".releasekit")
