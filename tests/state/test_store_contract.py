"""What every StateStore promises. Runs against each implementation via the `store` fixture."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
from _state_factories import ODD_NAMES, full_entry, make_entry

from releasekit.errors import LockedError
from releasekit.state.base import StateStore


def test_empty_store(store: StateStore) -> None:
    assert store.environments() == []
    assert store.entries("prod") == []
    assert store.describe()


def test_append_assigns_seq_and_round_trips_every_field(store: StateStore) -> None:
    entry = full_entry()
    stored = store.append(entry)
    assert stored.seq == 1
    assert store.entries("prod") == [stored]
    assert stored == replace(entry, seq=1)


def test_seqs_are_contiguous_and_ignore_the_callers_seq(store: StateStore) -> None:
    stored = [store.append(make_entry(release_id=n, seq=99)) for n in range(1, 6)]
    assert [entry.seq for entry in stored] == [1, 2, 3, 4, 5]
    assert store.entries("prod") == stored


def test_environments_are_separate_and_sorted(store: StateStore) -> None:
    store.append(make_entry(env="staging"))
    store.append(make_entry(env="dev"))
    store.append(make_entry(env="dev", release_id=2))
    assert store.environments() == ["dev", "staging"]
    assert [entry.release_id for entry in store.entries("dev")] == [1, 2]
    assert [entry.seq for entry in store.entries("staging")] == [1]


def test_odd_environment_names_stay_apart(store: StateStore) -> None:
    for number, name in enumerate(ODD_NAMES, start=1):
        store.append(make_entry(env=name, release_id=number))
    assert store.environments() == sorted(ODD_NAMES)
    for number, name in enumerate(ODD_NAMES, start=1):
        assert [(e.env, e.release_id) for e in store.entries(name)] == [(name, number)]


def test_earlier_entries_never_change(store: StateStore) -> None:
    first = store.append(make_entry(outcome="switching"))
    store.append(make_entry(outcome="succeeded"))
    assert store.entries("prod")[0] == first


def test_lock_says_who_holds_it(store: StateStore) -> None:
    with store.lock("prod", owner="deploy prod by alice") as info:
        assert (info.env, info.owner, info.pid) == ("prod", "deploy prod by alice", os.getpid())
        assert info.host and info.since


def test_second_lock_fails_fast_naming_the_holder(store: StateStore) -> None:
    with store.lock("prod", owner="deploy prod by alice"):
        started = time.monotonic()
        with pytest.raises(LockedError) as raised, store.lock("prod", owner="bob", timeout=0.2):
            pass
        assert time.monotonic() - started < 2.0
    message = str(raised.value)
    assert "'prod'" in message
    assert "deploy prod by alice" in message
    assert f"pid {os.getpid()}" in message
    assert "frees itself" in message


def test_locks_are_per_environment(store: StateStore) -> None:
    with store.lock("prod", owner="a"), store.lock("feature/x", owner="b") as info:
        assert info.env == "feature/x"


def test_lock_is_released_on_exit_and_on_error(store: StateStore) -> None:
    with store.lock("prod", owner="a"):
        pass
    with pytest.raises(RuntimeError), store.lock("prod", owner="b"):
        raise RuntimeError("the deploy failed")
    with store.lock("prod", owner="c", timeout=0.2) as info:
        assert info.owner == "c"


def test_append_while_holding_the_environment_lock(store: StateStore) -> None:
    with store.lock("prod", owner="deploy"):
        store.append(make_entry(outcome="switching"))
        store.append(make_entry(outcome="succeeded"))
    assert [entry.outcome for entry in store.entries("prod")] == ["switching", "succeeded"]
