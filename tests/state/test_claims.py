"""Claims: what a run holding an environment's lock is about to build and use, recorded on
its lock so other runs and gc leave those relations alone. Both stores: the claim lives
and dies with the lock, a dead holder's claim is not live, and the planning lock is one
per store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from _s3_workers import lease_bytes

from releasekit.errors import LockedError
from releasekit.state.base import LockInfo, StateStore
from releasekit.state.codec import holder_to_document
from releasekit.state.local import LocalStore
from tests.support.s3 import Bucket


def test_a_claim_is_live_while_its_lock_is_held_and_goes_with_it(store: StateStore) -> None:
    assert store.claims() == []
    with store.lock("feature/x", owner="ci") as info:
        store.claim("feature/x", "rk__physical", ["orders__1"], ["customers__2"])
        store.claim("feature/x", "rk__physical", ["orders__1", "revenue__3"], ["customers__2"])
        [claim] = store.claims()
        assert (claim.env, claim.lock_id, claim.owner, claim.live) == ("feature/x", info.id, "ci", True)
        assert (claim.physical_schema, claim.builds, claim.uses) == (
            "rk__physical",
            ("orders__1", "revenue__3"),
            ("customers__2",),
        )
        [holder] = [h for h in store.lock_holders() if h.env == "feature/x"]
        assert holder.id == info.id  # older readers of the lock record read it as before
    assert store.claims() == []


def test_claims_of_several_environments_are_seen_together(store: StateStore) -> None:
    with store.lock("dev", owner="a"), store.lock("prod", owner="b"):
        store.claim("dev", "rk__physical", ["x__1"], [])
        store.claim("prod", "rk__physical", [], ["x__1"])
        assert sorted((c.env, c.builds, c.uses) for c in store.claims()) == [
            ("dev", ("x__1",), ()),
            ("prod", (), ("x__1",)),
        ]


def test_the_planning_lock_keeps_a_second_holder_out_and_names_the_first(store: StateStore) -> None:
    second = LocalStore(store.root) if isinstance(store, LocalStore) else store
    with store.planning_lock(owner="deploy dev"):
        with (
            pytest.raises(LockedError, match="deciding what to build or drop") as refused,
            second.planning_lock(owner="deploy prod", timeout=0.3),
        ):
            pass
        assert "deploy dev" in str(refused.value)
    with second.planning_lock(owner="gc"):
        pass  # let go: free again


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_holders_claim_in_a_folder_is_not_live(local_store: LocalStore) -> None:
    since = "2024-05-01T12:00:00+00:00"
    info = LockInfo("dev", "deploy dev", socket.gethostname(), _dead_pid(), since, "0a1b")
    document = {**holder_to_document(info), "claim": {"physical_schema": "p", "builds": ["o__1"], "uses": []}}
    locks = local_store.root / "locks"
    locks.mkdir(parents=True)
    (locks / "dev.holder.json").write_text(json.dumps(document))
    [claim] = local_store.claims()
    assert (claim.env, claim.lock_id, claim.builds, claim.live) == ("dev", "0a1b", ("o__1",), False)


def test_an_expired_leases_claim_is_not_live(bucket: Bucket) -> None:
    store = bucket.store()
    document = json.loads(lease_bytes("dev", ttl=1))
    document["claim"] = {"physical_schema": "p", "builds": ["o__1"], "uses": []}
    bucket.write("locks/dev.json", json.dumps(document).encode())
    [claim] = store.claims()
    assert claim.live and claim.lock_id == "0a1b2c3d4e5f"
    deadline = time.monotonic() + 30
    while store.claims()[0].live and time.monotonic() < deadline:
        time.sleep(0.5)
    [claim] = store.claims()
    assert not claim.live
