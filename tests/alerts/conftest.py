"""A webhook receiver per test, stopped when the test ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.webhook import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
