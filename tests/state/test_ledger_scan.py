"""One ledger that does not read stays contained: `scan_ledgers` reads every other one and
names the bad one, in both stores; `all_entries` stays strict."""

from __future__ import annotations

import pytest

from releasekit.errors import StateError
from releasekit.state.base import StateStore
from releasekit.state.codec import env_from_key, env_key
from tests.support.state_factories import make_entry


@pytest.mark.parametrize("bad", ["feature/x", 'ünï;"c"/$(x)', "b" * 200])
def test_a_bad_entry_sets_its_ledger_aside_and_names_it(store: StateStore, bad: str) -> None:
    store.append(make_entry(env="dev"))
    store.append(make_entry(env=bad))
    assert store.create_object(f"ledger/{env_key(bad)}/00000002.json", b'{"format": "releasekit.ledger/1", ')
    scan = store.scan_ledgers()
    assert list(scan.entries) == ["dev"]
    [unreadable] = scan.unreadable
    assert unreadable.env == (bad if len(bad) < 100 else None)
    assert "00000002.json" in unreadable.problem and "not valid JSON" in unreadable.problem
    with pytest.raises(StateError, match=r"00000002\.json"):
        store.all_entries()
    with pytest.raises(StateError, match=r"00000002\.json"):
        store.entries(bad)


def test_a_bad_first_entry_and_a_gap_are_set_aside_too(store: StateStore) -> None:
    store.append(make_entry(env="dev"))
    assert store.create_object("ledger/broken/00000001.json", b"not json")
    store.append(make_entry(env="gappy"))
    assert store.create_object("ledger/gappy/00000003.json", b"{}")
    scan = store.scan_ledgers()
    assert list(scan.entries) == ["dev"]
    assert sorted(ledger.env or "" for ledger in scan.unreadable) == ["broken", "gappy"]


def test_env_from_key_inverts_env_key() -> None:
    for name in ["dev", "Prod", "feature/x", ".hidden", "a~b", "ünï", 'a"b;c']:
        assert env_from_key(env_key(name)) == name
    assert env_from_key(env_key("x" * 300)) is None
    assert env_from_key("%ZZ") is None
