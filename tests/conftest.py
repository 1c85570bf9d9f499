"""Settings and fixtures every test shares: hypothesis keeps its files (example database,
unicode tables) under .cache/ with the other tools' caches, not in a .hypothesis/ folder at
the repository's top; S3 tests get a moto server and a fresh bucket each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.support.s3 import Bucket, aws_environment, new_bucket, start_server

set_hypothesis_home_dir(Path(__file__).resolve().parents[1] / ".cache" / "hypothesis")


@pytest.fixture(autouse=True, scope="session")
def _user_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user's config folder (where releasekit keeps its generated fingerprint key) is a
    temp folder shared by the session's tests, never the real one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
        yield


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on loopback, for the whole session (one per xdist worker)."""
    server, endpoint = start_server()
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket, with this process's AWS chain pointed at the moto server."""
    for key, value in aws_environment(s3_endpoint).items():
        monkeypatch.setenv(key, value)
    return new_bucket(s3_endpoint)
