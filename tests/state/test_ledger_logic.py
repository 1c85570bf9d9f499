"""Reading an environment's history: releases, live, pending switch, retention, rollback."""

from __future__ import annotations

import re

import pytest

from releasekit.errors import NotFoundError
from releasekit.state.base import LedgerEntry
from releasekit.state.ledger import (
    live_release_id,
    next_release_id,
    pending_switch,
    releases,
    retained_release_ids,
    rollback_target,
    successful_release_ids,
)
from tests.support.state_factories import make_entry


def history(*steps: str) -> list[LedgerEntry]:
    """Entries from steps like "deploy 2 switching" or "rollback 1 succeeded"."""
    entries = []
    for seq, step in enumerate(steps, start=1):
        kind, release_id, outcome = step.split()
        entries.append(make_entry(kind=kind, release_id=int(release_id), outcome=outcome, seq=seq))
    return entries


def deployed(*release_ids: int) -> list[str]:
    """Steps for releases that each switched and succeeded."""
    return [f"deploy {n} {outcome}" for n in release_ids for outcome in ("switching", "succeeded")]


def test_empty_ledger() -> None:
    assert live_release_id([]) is None
    assert pending_switch([]) is None
    assert releases([]) == []
    assert next_release_id([]) == 1
    assert successful_release_ids([]) == []
    assert retained_release_ids([], keep=3) == set()


def test_releases_settle_on_their_latest_deploy_entry() -> None:
    entries = history(
        *deployed(1),
        "deploy 2 failed",
        "deploy 3 switching",
        "deploy 3 abandoned",
        *deployed(4),
        "rollback 1 switching",
        "rollback 1 succeeded",
        "deploy 5 switching",
    )
    outcomes = [(release.release_id, release.outcome) for release in releases(entries)]
    assert outcomes == [
        (1, "succeeded"),
        (2, "failed"),
        (3, "abandoned"),
        (4, "succeeded"),
        (5, "switching"),
    ]
    assert all(release.kind == "deploy" for release in releases(entries))


def test_release_is_described_by_the_entry_that_created_it() -> None:
    announced = make_entry(release_id=1, outcome="switching", who="alice", git_sha="1" * 40)
    settled = make_entry(release_id=1, outcome="abandoned", who="reconciler", at="later")
    (release,) = releases([announced, settled])
    assert (release.who, release.git_sha, release.at) == ("alice", "1" * 40, announced.at)
    assert release.outcome == "abandoned"


@pytest.mark.parametrize(
    ("steps", "live"),
    [
        (deployed(1), 1),
        ([*deployed(1), "deploy 2 switching"], 1),
        ([*deployed(1), "deploy 2 failed"], 1),
        ([*deployed(1, 2)], 2),
        ([*deployed(1, 2), "rollback 1 switching", "rollback 1 succeeded"], 1),
        ([*deployed(1, 2), "rollback 1 switching", "rollback 1 abandoned"], 2),
        (["deploy 1 failed"], None),
    ],
)
def test_live_release(steps: list[str], live: int | None) -> None:
    assert live_release_id(history(*steps)) == live


def test_pending_switch_is_an_unsettled_announcement() -> None:
    entries = history(*deployed(1), "deploy 2 switching")
    assert pending_switch(entries) == entries[-1]
    assert pending_switch(history(*deployed(1, 2))) is None
    assert pending_switch(history(*deployed(1), "deploy 2 switching", "deploy 2 abandoned")) is None


def test_pending_rollback() -> None:
    entries = history(*deployed(1, 2), "rollback 1 switching")
    pending = pending_switch(entries)
    assert pending is not None
    assert (pending.kind, pending.release_id) == ("rollback", 1)


def test_pending_switch_survives_an_unrelated_later_failure() -> None:
    # A later run that recorded a failed build without reconciling must not hide it.
    entries = history(*deployed(1), "deploy 2 switching", "deploy 3 failed")
    assert pending_switch(entries) == entries[2]


def test_a_later_successful_switch_supersedes_a_pending_one() -> None:
    entries = history(*deployed(1), "deploy 2 switching", *deployed(3))
    assert pending_switch(entries) is None


def test_next_release_id_counts_past_rollbacks_and_failures() -> None:
    entries = history(*deployed(1, 2), "deploy 3 failed", "rollback 1 switching", "rollback 1 succeeded")
    assert next_release_id(entries) == 4


def test_successful_release_ids_ignore_failures_and_rollbacks() -> None:
    entries = history(
        *deployed(1), "deploy 2 failed", *deployed(3), "deploy 4 switching", "rollback 1 succeeded"
    )
    assert successful_release_ids(entries) == [1, 3]


def test_retention_keeps_the_last_successful_and_the_live_one() -> None:
    entries = history(*deployed(1, 2, 3, 4, 5))
    assert retained_release_ids(entries, keep=2) == {4, 5}
    rolled_back = [*entries, *history("rollback 1 switching", "rollback 1 succeeded")]
    assert retained_release_ids(rolled_back, keep=2) == {1, 4, 5}
    assert retained_release_ids(rolled_back, keep=0) == {1}
    assert retained_release_ids(rolled_back, keep=50) == {1, 2, 3, 4, 5}
    assert retained_release_ids(history(*deployed(1, 2)), keep=3) == {1, 2}


def test_retention_keeps_a_pending_switch() -> None:
    # The warehouse may already read the pending release's relations.
    entries = history(*deployed(1, 2), "deploy 3 switching")
    assert retained_release_ids(entries, keep=1) == {2, 3}


def test_retention_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="keep"):
        retained_release_ids([], keep=-1)


def test_rollback_defaults_to_the_newest_earlier_success() -> None:
    entries = history(*deployed(1, 2), "deploy 3 failed", *deployed(4))
    assert rollback_target(entries, None, keep=3) == 2


def test_rollback_after_a_rollback_goes_further_back() -> None:
    entries = history(*deployed(1, 2, 3), "rollback 2 switching", "rollback 2 succeeded")
    assert rollback_target(entries, None, keep=3) == 1


def test_rollback_to_a_named_retained_release() -> None:
    entries = history(*deployed(1, 2, 3, 4))
    assert rollback_target(entries, 2, keep=3) == 2
    rolled_back = [*entries, *history("rollback 2 succeeded")]
    assert rollback_target(rolled_back, 4, keep=3) == 4  # forward again


def test_rollback_to_the_live_release_is_refused() -> None:
    entries = history(*deployed(1, 2))
    with pytest.raises(NotFoundError, match="release 2: it is already live") as raised:
        rollback_target(entries, 2, keep=3)
    assert "'prod'" in str(raised.value)
    assert "releases to roll back to: 1" in str(raised.value)


@pytest.mark.parametrize("to", [1, 3, 9])
def test_rollback_to_a_release_not_retained_or_not_successful(to: int) -> None:
    entries = history(*deployed(1, 2), "deploy 3 failed", *deployed(4, 5))
    with pytest.raises(NotFoundError) as raised:
        rollback_target(entries, to, keep=3)
    message = str(raised.value)
    assert f"environment 'prod' cannot roll back to release {to}" in message
    assert "releases to roll back to: 2, 4" in message
    assert "hint: choose one of the retained releases" in message


def test_rollback_with_nothing_earlier() -> None:
    with pytest.raises(
        NotFoundError, match=re.escape("no retained release older than live release 1")
    ) as raised:
        rollback_target(history(*deployed(1)), None, keep=3)
    assert "releases to roll back to: none" in str(raised.value)
    assert "deploy the commit you want" in str(raised.value)


def test_rollback_skips_releases_past_retention() -> None:
    # After rolling back to 1, its predecessor is gone; 1 is as far back as it goes.
    entries = history(*deployed(1, 2, 3, 4), "rollback 2 succeeded")
    with pytest.raises(NotFoundError, match="releases to roll back to: 3, 4"):
        rollback_target(entries, None, keep=2)


def test_rollback_without_a_live_release() -> None:
    with pytest.raises(NotFoundError, match="'prod' has no live release"):
        rollback_target(history("deploy 1 failed"), None, keep=3)
    with pytest.raises(NotFoundError, match="empty ledger"):
        rollback_target([], None, keep=3)
