"""The branch-environment registry, against every StateStore (the `store` fixture)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from releasekit.errors import StateError
from releasekit.state.base import BranchEnvironment, StateStore
from releasekit.state.local import LocalStore

RECORD = BranchEnvironment(
    branch='feat/$(id);"x"',
    schema="br_feat_id_x_1a2b3c4d5e",
    base="dev",
    base_release=3,
    owner="Ann <ann@example.com>",
    created_at="2026-11-21T10:00:00+00:00",
    expires_at="2026-12-05T10:00:00+00:00",
)


def test_register_read_list_and_unregister(store: StateStore) -> None:
    assert store.branches() == [] and store.branch(RECORD.branch) is None
    store.register(RECORD)
    assert store.branch(RECORD.branch) == RECORD
    assert store.branches() == [RECORD]
    store.unregister(RECORD.branch)
    store.unregister(RECORD.branch)  # twice is harmless
    assert store.branches() == []


def test_register_replaces_the_record_of_the_same_branch(store: StateStore) -> None:
    store.register(RECORD)
    pinned = dataclasses.replace(RECORD, pinned=True)
    store.register(pinned)
    assert store.branches() == [pinned]


def test_branches_differing_only_in_case_or_punctuation_are_kept_apart(store: StateStore) -> None:
    names = ["Feat/X", "feat/x", "feat_x", "feat-x"]
    for name in names:
        store.register(dataclasses.replace(RECORD, branch=name, schema=f"s{len(name)}"))
    assert sorted(record.branch for record in store.branches()) == sorted(names)


def test_a_corrupt_registry_record_is_a_clear_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / ".releasekit")
    store.register(RECORD)
    [path] = (tmp_path / ".releasekit" / "registry").iterdir()
    path.write_text("{not json")
    with pytest.raises(StateError, match="registry"):
        store.branches()
    assert path.read_text() == "{not json"  # never overwritten


def test_a_record_that_does_not_read_is_never_replaced(store: StateStore) -> None:
    store.register(RECORD)
    key = next(key for key in store.object_keys() if key.startswith("registry/"))
    _overwrite(store, key, b'{"format": "releasekit.registry/9"}')
    with pytest.raises(StateError, match="registry"):
        store.register(dataclasses.replace(RECORD, pinned=True))
    assert store.read_object(key) == b'{"format": "releasekit.registry/9"}'


def _overwrite(store: StateStore, key: str, data: bytes) -> None:
    """Damage a document behind the store's back, as a bad hand edit would."""
    if isinstance(store, LocalStore):
        (store.root / key).write_bytes(data)
    else:
        objects = store.objects  # type: ignore[attr-defined]
        stored = objects.get(key)
        assert objects.replace(key, data, stored.etag) is not None
