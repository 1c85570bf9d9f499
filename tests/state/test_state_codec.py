"""The ledger document format: exact round trips, and loud failures on anything odd."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from releasekit.errors import StateError
from releasekit.state.base import LockInfo
from releasekit.state.codec import (
    LEDGER_FORMAT,
    dumps,
    entry_to_document,
    env_key,
    holder_from_document,
    holder_to_document,
    loads,
)
from tests.support.state_factories import ODD_NAMES, full_entry, make_entry

WHERE = "/state/ledger/prod/00000001.json"


def document(**changes: Any) -> dict[str, Any]:
    doc = entry_to_document(full_entry())
    doc.update(changes)
    return doc


def load(doc: object) -> None:
    loads(json.dumps(doc).encode(), where=WHERE)


def test_round_trip_keeps_every_field() -> None:
    entry = full_entry()
    assert loads(dumps(entry), where=WHERE) == entry


def test_round_trip_of_defaults() -> None:
    entry = make_entry(seq=3)
    assert loads(dumps(entry), where=WHERE) == entry


def test_forced_and_hold_are_written_only_when_set_and_older_documents_read() -> None:
    plain = entry_to_document(make_entry())
    assert "forced" not in plain and "hold" not in plain  # a plain deploy's document as before
    entry = loads(json.dumps(plain).encode(), where=WHERE)
    assert entry.forced == {} and entry.hold == {}
    doc = entry_to_document(full_entry())
    assert doc["forced"]["reason"] == "hotfix, INC-42" and doc["hold"]["action"] == "hold"
    with pytest.raises(StateError, match="hold: should be dict"):
        load(document(hold=["held"]))


def test_document_names_its_format_and_environment() -> None:
    doc = json.loads(dumps(full_entry(env="feature/x")))
    assert doc["format"] == LEDGER_FORMAT == "releasekit.ledger/1"
    assert doc["env"] == "feature/x"


def test_corrupt_json_names_the_file() -> None:
    data = dumps(full_entry())[:40]
    with pytest.raises(StateError, match=re.escape(WHERE)) as raised:
        loads(data, where=WHERE)
    assert "never overwrites" in str(raised.value)


def test_bytes_that_are_not_utf8_name_the_file() -> None:
    with pytest.raises(StateError, match=re.escape(WHERE)):
        loads(b"\xff\xfe{}", where=WHERE)


@pytest.mark.parametrize("doc", [[1, 2], "text", None, {}])
def test_not_a_ledger_document(doc: object) -> None:
    with pytest.raises(StateError, match="not a releasekit ledger document"):
        load(doc)


def test_newer_format_asks_for_an_upgrade() -> None:
    with pytest.raises(StateError, match=re.escape("releasekit.ledger/2")) as raised:
        load(document(format="releasekit.ledger/2"))
    assert WHERE in str(raised.value)
    assert "upgrade releasekit" in str(raised.value)


def test_unknown_format() -> None:
    with pytest.raises(StateError, match=f"{re.escape(WHERE)}: not a releasekit ledger"):
        load(document(format="something/1"))


OPTIONAL = {"promotion", "forced", "hold"}  # written only when set: documents without them read


@pytest.mark.parametrize("field", sorted(set(document()) - {"format"} - OPTIONAL))
def test_missing_field_names_file_and_field(field: str) -> None:
    doc = document()
    del doc[field]
    with pytest.raises(StateError, match=f"{re.escape(WHERE)}: {field}: missing"):
        load(doc)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", "1"),
        ("seq", True),
        ("release_id", 1.5),
        ("kind", "redeploy"),
        ("outcome", "done"),
        ("git_sha", None),
        ("params", []),
        ("models", []),
        ("built", "model.shop.orders"),
        ("reused", [1]),
        ("previous_release", "6"),
        ("note", 3),
    ],
)
def test_wrong_type_names_file_and_field(field: str, value: object) -> None:
    with pytest.raises(StateError, match=f"{re.escape(WHERE)}: {field}: "):
        load(document(**{field: value}))


def test_model_problems_name_the_key_path() -> None:
    doc = document()
    del doc["models"]["model.shop.orders"]["fingerprint"]
    with pytest.raises(StateError, match=r"models\.model\.shop\.orders\.fingerprint: missing"):
        load(doc)


def test_model_filed_under_another_id_is_refused() -> None:
    doc = document()
    doc["models"]["model.shop.other"] = doc["models"].pop("model.shop.orders")
    with pytest.raises(StateError, match=re.escape("holds unique_id 'model.shop.orders'")):
        load(doc)


def test_unknown_field_is_refused_not_dropped() -> None:
    with pytest.raises(StateError, match="surprise: unknown field"):
        load(document(surprise=1))


def test_null_previous_release_is_allowed() -> None:
    entry = loads(json.dumps(document(previous_release=None)).encode(), where=WHERE)
    assert entry.previous_release is None


def test_lock_holder_round_trip() -> None:
    info = LockInfo(
        env="prod", owner="deploy by bob", host="ci-7", pid=42, since="2024-05-01", id="0a1b2c3d4e5f"
    )
    assert holder_from_document(holder_to_document(info), where="x") == info


def test_lock_holder_without_an_id_is_refused() -> None:
    info = LockInfo(env="prod", owner="bob", host="ci-7", pid=42, since="2024-05-01", id="0a1b2c3d4e5f")
    document = holder_to_document(info)
    del document["id"]
    with pytest.raises(StateError, match="x: id: missing"):
        holder_from_document(document, where="x")


def test_env_keys_are_distinct_and_safe() -> None:
    keys = [env_key(name) for name in ODD_NAMES]
    assert len(set(keys)) == len(keys)
    # Distinct even on a case-insensitive file system.
    assert len({key.lower() for key in keys}) == len(keys)
    for key in keys:
        assert re.fullmatch(r"[a-z0-9._%A-F-]+", key), key
        assert key not in {".", ".."}
        assert not key.startswith(".")


def test_env_keys_stay_readable() -> None:
    assert env_key("prod") == "prod"
    assert env_key("feature/x") == "feature%2Fx"
    assert env_key("release-1.2_rc") == "release-1.2_rc"


def test_long_names_are_shortened_without_collisions() -> None:
    first, second = "feature/" + "a" * 300 + "1", "feature/" + "a" * 300 + "2"
    assert env_key(first) != env_key(second)
    assert len(env_key(first)) <= 120
    assert env_key(first).startswith("feature%2Faaa")


def test_empty_env_name_is_refused() -> None:
    with pytest.raises(StateError, match="cannot be empty"):
        env_key("")
