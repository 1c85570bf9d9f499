"""One name, one environment, in both stores: a branch environment's ledger (its name has a
registry record) lives apart from a declared environment's of the same name; a branch
ledger an older releasekit wrote among the declared ones is still found, and never read as
a declared environment's."""

from __future__ import annotations

import pytest

from releasekit.errors import StateError
from releasekit.state.base import BranchEnvironment, StateStore
from releasekit.state.codec import dumps
from tests.support.state_factories import make_entry

WHEN = "2024-05-01T12:00:00+00:00"


def _record(name: str) -> BranchEnvironment:
    return BranchEnvironment(name, f"br_{name}", "dev", 1, "alice", WHEN, "2024-05-15T12:00:00+00:00")


def test_a_branch_and_a_declared_environment_of_one_name_keep_apart(store: StateStore) -> None:
    store.register(_record("qa"))
    store.append(make_entry(env="qa", note="branched from dev release 1"))
    store.append(make_entry(env="qa", release_id=2, note="branch deploy"))
    store.unregister("qa")  # torn down; then environments/qa.yml declares qa
    assert store.entries("qa") == []
    assert store.append(make_entry(env="qa", note="declared deploy")).seq == 1
    assert [e.note for e in store.entries("qa")] == ["declared deploy"]
    scan = store.scan_ledgers()
    assert [e.note for e in scan.entries["qa"]] == ["declared deploy"]
    assert [e.note for e in scan.branches["qa"]] == ["branched from dev release 1", "branch deploy"]
    assert any(key.startswith("ledger/branch~qa/") for key in store.object_keys())
    store.register(_record("qa"))  # up again: its own ledger, not the declared one
    assert [e.note for e in store.entries("qa")] == ["branched from dev release 1", "branch deploy"]


def test_a_branch_ledger_in_the_old_layout_is_found_and_never_read_as_a_declared_one(
    store: StateStore,
) -> None:
    first = make_entry(env="legacy", note="branched from dev release 3", seq=1)
    assert store.create_object("ledger/legacy/00000001.json", dumps(first))  # an older releasekit's
    store.register(_record("legacy"))
    assert [e.note for e in store.entries("legacy")] == ["branched from dev release 3"]
    assert store.append(make_entry(env="legacy", note="deploy")).seq == 2  # it stays where it is
    assert "ledger/legacy/00000002.json" in store.object_keys()
    store.unregister("legacy")
    legacy = "holds the ledger of a branch environment named 'legacy'"
    with pytest.raises(StateError, match=legacy) as refused:
        store.entries("legacy")
    assert "branch~legacy" in str(refused.value.hint)
    with pytest.raises(StateError, match="branch environment named 'legacy'"):
        store.append(make_entry(env="legacy"))
    notes = [e.note for e in store.scan_ledgers().branches["legacy"]]
    assert notes == ["branched from dev release 3", "deploy"]
