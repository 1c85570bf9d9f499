"""Entries and whole states for the state tests, importable by test modules and by child processes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from releasekit.state.base import BranchEnvironment, CheckRecord, LedgerEntry, ModelVersion, StateStore

# Environment names that could be git branch names, chosen to collide under naive encodings.
ODD_NAMES = [
    "prod",
    "Prod",
    "PROD",
    "feature/x",
    "feature%2Fx",
    "feature_x",
    "feature x",
    ".",
    "..",
    ".hidden",
    "%2E",
    "x.append",
    "x.holder",
    'a"b;c$(rm -rf)`d`',
    "ünïcødé/ブランチ",
    "a~b",
    "-",
]


def make_entry(**overrides: Any) -> LedgerEntry:
    """A plausible entry; any field can be overridden."""
    values: dict[str, Any] = {
        "env": "prod",
        "release_id": 1,
        "kind": "deploy",
        "outcome": "succeeded",
        "git_sha": "a" * 40,
        "who": "alice",
        "at": "2024-05-01T12:00:00+00:00",
    }
    return LedgerEntry(**(values | overrides))


def full_entry(env: str = "prod") -> LedgerEntry:
    """An entry with every field set to something other than its default."""
    orders = ModelVersion(
        unique_id="model.shop.orders",
        name="orders",
        fingerprint="f" * 64,
        relation="orders__ffffffff",
        inputs={"sql": "1" * 64, "vars": "2" * 64},
    )
    return make_entry(
        env=env,
        release_id=7,
        kind="rollback",
        outcome="switching",
        params={"start": "2024-01-01", "limits": {"rows": 10, "ratio": 0.5}, "on": True},
        models={orders.unique_id: orders},
        built=("model.shop.orders",),
        reused=("model.shop.customers", "model.shop.items"),
        failures=("test.shop.not_null_orders_id",),
        previous_release=6,
        physical_schema="rk__physical",
        note="rolled back: late data — ünïcode ok",
        forced={"reason": "hotfix, INC-42", "branch": "prod", "branch_head": None, "commit": "b" * 40},
        hold={"action": "hold", "from_release": 6, "from_commit": "d" * 40, "commits": ["d" * 40]},
    )


SHA = "c" * 40  # the commit `fill` records checks of
CONTENT = "d" * 40  # the project tree `fill`'s passing check verified


def fill(store: StateStore) -> None:
    """A state with every kind of document: two ledgers (one of a branch named like a path),
    a registry record, two check records of one commit, an artifact."""
    for release in range(1, 13):  # past 9, so a name-sorted copy would still be in seq order
        store.append(make_entry(env="dev", release_id=release))
    store.register(  # before its first entry, as `env up` does: its ledger is a branch's
        BranchEnvironment(
            "feature/x",
            "br_feature_x",
            "dev",
            12,
            "alice",
            "2024-05-01T12:00:00+00:00",
            "2024-05-15T12:00:00+00:00",
        )
    )
    store.append(full_entry(env="feature/x"))
    for passed in (False, True):
        record = CheckRecord(
            SHA, "feature/x", "dev", 1, passed, "ok", {"lint": "passed"}, "alice", "2024-05-01T12:00:00+00:00"
        )
        # The passing one of a clean tree: also kept by the project tree it verified.
        store.record_check(replace(record, ran=("lint",), content=CONTENT) if passed else record)
    store.put_artifact("graph-abc", b'{"nodes": {}}\n' * 100)
