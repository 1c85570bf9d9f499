"""A rollback's hold, read from the ledger: in force while the rollback is what made the
live release live; ended by the next successful deploy, not by a failed one."""

from __future__ import annotations

import dataclasses

from releasekit.state.base import LedgerEntry
from releasekit.state.ledger import active_hold
from tests.support.state_factories import make_entry

BAD = "b" * 40
HOLD = {"action": "hold", "from_release": 2, "from_commit": BAD, "commits": [BAD], "contents": ["t" * 40]}


def rollback(outcome: str = "succeeded") -> LedgerEntry:
    return make_entry(kind="rollback", release_id=1, outcome=outcome, hold=HOLD, previous_release=2)


def deployed(release_id: int, outcome: str = "succeeded") -> LedgerEntry:
    return make_entry(release_id=release_id, outcome=outcome)


def test_a_successful_rollback_holds_against_the_commit_and_content_it_left() -> None:
    hold = active_hold([deployed(1), deployed(2), rollback("switching"), rollback()])
    assert hold is not None and (hold.from_release, hold.to_release, hold.who) == (2, 1, "alice")
    assert hold.covers(BAD, None) and hold.covers("c" * 40, "t" * 40)  # same project, other sha
    assert not hold.covers("c" * 40, "u" * 40) and not hold.covers("c" * 40, None)


def test_only_a_later_successful_deploy_ends_it() -> None:
    held = [deployed(1), deployed(2), rollback()]
    assert active_hold([*held, deployed(3, "failed")]) is not None
    assert active_hold([*held, deployed(3, "switching")]) is not None  # not settled yet
    assert active_hold([*held, deployed(3)]) is None
    assert active_hold([deployed(1), deployed(2), rollback("switching")]) is None  # never switched


def test_a_rollback_without_a_hold_record_holds_nothing() -> None:
    older = dataclasses.replace(rollback(), hold={})  # written before holds existed
    assert active_hold([deployed(1), deployed(2), older]) is None
