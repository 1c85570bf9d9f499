"""env_var() values in fingerprints: hashed with a key no state document holds, so the
ledger cannot be used to test guesses of a secret; fingerprints still follow the value,
and stay equal across a team's workspaces that share the key."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.config.secrets import KEY_ENV, fingerprint_key, key_file
from releasekit.errors import ConfigError
from releasekit.state.base import STATE_AREAS
from tests.support.projects import PROFILE, git, make_repo

pytestmark = pytest.mark.integration

SECRET = "hunter2-shop"  # low entropy: a dictionary attack on sha256(value) finds it at once
KEY = "team-key-0123456789abcdef"
SECRET_MODEL = {"models/secret_region.sql": "select '{{ env_var('SHOP_SECRET') }}' as region\n"}
READERS = {"secret_region"}


def _shared_profile(warehouse: Path) -> str:
    return PROFILE.replace("path: warehouse.duckdb", f"path: {warehouse}")


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The process environment with its own user config folder (no generated key shared
    with other workspaces unless the test says so)."""
    home = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}"
    return {**os.environ, "XDG_CONFIG_HOME": str(home), **extra}


def _workspace(repo: Path, state: Path, environ: Mapping[str, str]) -> Workspace:
    return Workspace.open(repo, overrides={"state_path": state}, environ=environ)


def _plan(repo: Path, state: Path, environ: Mapping[str, str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    plan = api.plan(_workspace(repo, state, environ), "dev")
    return {step.name: (step.action, step.reasons) for step in plan.steps}


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """Two clones of one repository (two engineers, or two CI runners) sharing a state
    folder and a warehouse; A has deployed dev with the team's key. dbt itself reads
    SHOP_SECRET from the process environment."""
    monkeypatch.setenv("SHOP_SECRET", SECRET)
    a = make_repo(tmp_path / "a", SECRET_MODEL, profile=_shared_profile(tmp_path / "shared.duckdb"))
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(a), str(b))
    state = tmp_path / "state"
    result = api.deploy(_workspace(a, state, _environ(tmp_path, **{KEY_ENV: KEY})), "dev")
    assert result.outcome == "succeeded"
    return a, b, state


def _every_file_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def test_no_state_document_holds_a_plain_hash_of_the_value(team: tuple[Path, Path, Path]) -> None:
    _, _, state = team
    plain = hashlib.sha256(SECRET.encode()).hexdigest()
    # Every state document; logs/ and dbt/ beside them are dbt's own files on this machine.
    documents = _every_file_under(*(state / area for area in STATE_AREAS))
    assert documents, "the deploy wrote state"
    for path, data in documents.items():
        text = data.decode("utf-8", errors="replace")
        assert plain[:12] not in text, path
        assert SECRET not in text, path
    entry = api.releases(_workspace(team[0], state, _environ(state.parent)), "dev")[-1]
    version = next(v for v in entry.models.values() if v.name == "secret_region")
    assert version.inputs["env_var:SHOP_SECRET"].startswith("hmac-sha256:")


def test_equal_values_and_key_reuse_across_workspaces(team: tuple[Path, Path, Path]) -> None:
    _, b, state = team
    steps = _plan(b, state, _environ(state.parent, **{KEY_ENV: KEY}))
    assert {action for action, _ in steps.values()} == {"reuse"}


def test_a_changed_value_changes_exactly_its_readers(
    team: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b, state = team
    monkeypatch.setenv("SHOP_SECRET", "another-value")
    steps = _plan(b, state, _environ(state.parent, **{KEY_ENV: KEY}))
    assert {name for name, (action, _) in steps.items() if action == "build"} == READERS
    assert steps["secret_region"][1] == ("env var SHOP_SECRET changed",)


def test_another_key_rebuilds_readers_and_nothing_else(team: tuple[Path, Path, Path]) -> None:
    """Without the team's key, B hashes with its own generated key: the readers of an env
    var get other fingerprints (rebuilt, never wrongly reused); every other model keeps
    its fingerprint, so it is reused."""
    _, b, state = team
    environ = _environ(state.parent)
    steps = _plan(b, state, environ)
    assert {name for name, (action, _) in steps.items() if action == "build"} == READERS
    assert steps["secret_region"][1] == (
        "env var SHOP_SECRET hashed with another fingerprint key (set RELEASEKIT_FINGERPRINT_KEY)",
    )
    path = key_file(environ)
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fingerprint_key(environ) == path.read_text().strip().encode()  # kept, not regenerated


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is 5 characters long") as caught:
        fingerprint_key({KEY_ENV: "short"})
    assert caught.value.hint is not None and "token_hex" in caught.value.hint


def test_an_unwritable_config_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the config folder should be")
    with pytest.raises(ConfigError, match="cannot read or create the fingerprint key") as caught:
        fingerprint_key({"XDG_CONFIG_HOME": str(blocker)})
    assert KEY_ENV in str(caught.value.hint)


def test_a_project_reading_no_env_var_needs_no_key(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    environ = _environ(tmp_path)
    api.plan(Workspace.open(repo, environ=environ), "dev")
    assert not key_file(environ).exists()
