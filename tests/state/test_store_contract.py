"""What every StateStore promises. Runs against each implementation via the `store` fixture."""

from __future__ import annotations

import os
import re
from dataclasses import replace

import pytest

from releasekit.errors import EXIT_LOCKED, EXIT_USAGE, LockedError, LockMismatchError, NotFoundError
from releasekit.state.base import DEFAULT_LOCK_TIMEOUT, StateStore
from tests.support.state_factories import ODD_NAMES, full_entry, make_entry


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
        assert re.fullmatch(r"[0-9a-f]{12}", info.id)


def test_every_hold_gets_a_new_id(store: StateStore) -> None:
    ids = set()
    for _ in range(5):
        with store.lock("prod", owner="a") as info:
            ids.add(info.id)
    assert len(ids) == 5


def test_second_lock_fails_fast_naming_the_holder(store: StateStore) -> None:
    with (
        store.lock("prod", owner="deploy prod by alice") as held,
        pytest.raises(LockedError) as raised,
        store.lock("prod", owner="bob", timeout=0.2),
    ):
        pass
    error = raised.value
    assert error.exit_code == EXIT_LOCKED == 4
    assert error.message.startswith(
        f"environment 'prod' is locked by deploy prod by alice (pid {os.getpid()} on {held.host}) "
        f"since {held.since}, lock id {held.id}"
    )
    assert error.hint is not None
    assert error.hint.endswith(f"releasekit unlock prod --id {held.id}")


def test_a_second_run_fails_within_the_default_timeout(store: StateStore) -> None:
    assert DEFAULT_LOCK_TIMEOUT <= 2.0  # leaves a command 3 s to start up and still fail within 5 s
    # Refused while "a" holds: it does not wait for "a" to let go.
    with store.lock("prod", owner="a"), pytest.raises(LockedError), store.lock("prod", owner="b"):
        pass


def test_unlocking_an_environment_nobody_locked_is_not_found(store: StateStore) -> None:
    with pytest.raises(NotFoundError, match="'prod' is not locked"):
        store.break_lock("prod", "0a1b2c3d4e5f")
    with store.lock("prod", owner="a") as info:
        pass
    with pytest.raises(NotFoundError, match="'prod' is not locked"):
        store.break_lock("prod", info.id)


def test_unlock_refuses_a_wrong_id_naming_the_holders(store: StateStore) -> None:
    with store.lock("prod", owner="deploy prod by alice") as info:
        with pytest.raises(LockMismatchError) as raised:
            store.break_lock("prod", "ffffffffffff")
        assert raised.value.exit_code == EXIT_USAGE
        assert f"held under id {info.id!r} by deploy prod by alice" in raised.value.message
        with pytest.raises(LockedError), store.lock("prod", owner="bob", timeout=0):
            pass  # still held


def test_unlock_refuses_a_live_holder(store: StateStore) -> None:
    with store.lock("prod", owner="deploy prod by alice") as info:
        with pytest.raises(LockedError, match=f"live process: pid {os.getpid()} on host {info.host}"):
            store.break_lock("prod", info.id)
        with pytest.raises(LockedError), store.lock("prod", owner="bob", timeout=0):
            pass  # still held
    with store.lock("prod", owner="bob", timeout=0) as after:
        assert after.owner == "bob"


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
