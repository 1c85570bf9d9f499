"""What the crash and fault tests assert of a ledger, shared by all of them."""

from __future__ import annotations

from collections.abc import Sequence

from releasekit.state.base import LedgerEntry
from releasekit.state.ledger import pending_switch


def release_views(entries: Sequence[LedgerEntry]) -> dict[int, dict[str, str]]:
    """Release id -> view name -> relation, for every deploy or refresh entry that reached its switch.
    Every entry of one release that names models must name the same ones."""
    views: dict[int, dict[str, str]] = {}
    for entry in entries:
        if entry.kind in ("deploy", "refresh") and entry.outcome in ("switching", "succeeded"):
            mapping = {version.name: version.relation for version in entry.models.values()}
            known = views.setdefault(entry.release_id, mapping)
            assert known == mapping, f"release {entry.release_id}: entries disagree on its models"
    return views


def assert_settled_once(entries: Sequence[LedgerEntry]) -> None:
    """No switch is pending; every announced one is settled by exactly one later entry."""
    assert pending_switch(list(entries)) is None
    for entry in entries:
        if entry.outcome != "switching":
            continue
        settling = [
            e
            for e in entries
            if e.release_id == entry.release_id
            and e.kind == entry.kind
            and e.outcome in ("succeeded", "abandoned")
        ]
        assert len(settling) == 1 and settling[0].seq > entry.seq, (
            f"release {entry.release_id} announced at seq {entry.seq} is settled {len(settling)} times: "
            f"{[(e.seq, e.kind, e.outcome, e.release_id) for e in entries]}"
        )
