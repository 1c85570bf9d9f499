"""What an environment's ledger says: releases, the live one, a pending switch, rollback.

Pure functions over one environment's entries in seq order; no I/O. Two kinds of entry
share release ids: a deploy creates a release (a new id), a rollback switches back to an
existing one and reuses its id, as a repair does (the live release switched in again over
a schema that drifted). So a *release* is built from deploy entries only, and the live
release is whatever the last successful switch of any kind put in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from releasekit.errors import NoLiveReleaseError, NotFoundError
from releasekit.state.base import RELEASE_KINDS, Kind, LedgerEntry, ModelVersion, Outcome


@dataclass(frozen=True)
class Release:
    """One release made by a deploy: what it held, and how its deploy settled."""

    release_id: int
    kind: Kind  # of the entry that created it: deploy or refresh
    outcome: Outcome  # of its latest deploy entry (rollbacks to it do not change it)
    git_sha: str
    models: Mapping[str, ModelVersion]
    built: tuple[str, ...]
    reused: tuple[str, ...]
    at: str  # when it was first recorded
    who: str
    previous_release: int | None


def releases(entries: Sequence[LedgerEntry]) -> list[Release]:
    """One per release id a deploy or refresh created, by id, with its settled outcome."""
    groups: dict[int, list[LedgerEntry]] = {}
    for entry in entries:
        if entry.kind in RELEASE_KINDS:
            groups.setdefault(entry.release_id, []).append(entry)
    return [_release(group) for _, group in sorted(groups.items())]


def _release(group: list[LedgerEntry]) -> Release:
    # The first entry describes the release (later ones only settle it, perhaps written by
    # a rerun that reconciled a dead one); the last one says how it settled.
    first = group[0]
    return Release(
        release_id=first.release_id,
        kind=first.kind,
        outcome=group[-1].outcome,
        git_sha=first.git_sha,
        models=first.models,
        built=first.built,
        reused=first.reused,
        at=first.at,
        who=first.who,
        previous_release=first.previous_release,
    )


# A branch environment's first entry (its `env up`) says where it branched from.
BRANCHED_FROM = "branched from "


def made_by_branch(entries: Sequence[LedgerEntry]) -> bool:
    """The ledger is a branch environment's: its first entry is an `env up`."""
    return bool(entries) and entries[0].note.startswith(BRANCHED_FROM)


def live_release_id(entries: Sequence[LedgerEntry]) -> int | None:
    """The release the last successful switch (deploy or rollback) put in place; None once
    the environment was torn down after it."""
    for entry in reversed(entries):
        if entry.outcome == "succeeded":
            return None if entry.kind == "teardown" else entry.release_id
    return None


def live_entry(entries: Sequence[LedgerEntry]) -> LedgerEntry | None:
    """The entry that made the live release live (its models are what consumers read)."""
    live_id = live_release_id(entries)
    succeeded = [e for e in entries if e.outcome == "succeeded" and e.release_id == live_id]
    return succeeded[-1] if succeeded else None


def require_live(
    entries: Sequence[LedgerEntry], env: str, purpose: str, *, label: str | None = None
) -> LedgerEntry:
    """`live_entry`, for what needs a live release to `purpose` (promote, roll back from,
    branch from, check against): raises NoLiveReleaseError when `env` serves none."""
    live = live_entry(entries)
    if live is None:
        raise NoLiveReleaseError(env, purpose, label=label)
    return live


def torn_down(entries: Sequence[LedgerEntry]) -> bool:
    """The environment's last settled entry is its teardown."""
    settled = [entry for entry in entries if entry.outcome == "succeeded"]
    return bool(settled) and settled[-1].kind == "teardown"


def pending_switch(entries: Sequence[LedgerEntry]) -> LedgerEntry | None:
    """A switch that was announced and never settled: its run died in between.

    Normally that is the last entry. Walking back also catches one a later run failed
    to reconcile before recording something else; a later successful switch rewrote the
    views, so nothing before it can still be pending.
    """
    settled: set[int] = set()
    for entry in reversed(entries):
        if entry.outcome == "succeeded":
            return None
        if entry.outcome == "switching" and entry.release_id not in settled:
            return entry
        settled.add(entry.release_id)
    return None


def next_release_id(entries: Sequence[LedgerEntry]) -> int:
    return max((entry.release_id for entry in entries), default=0) + 1


def successful_release_ids(entries: Sequence[LedgerEntry]) -> list[int]:
    """Releases whose deploy succeeded, ascending."""
    return [release.release_id for release in releases(entries) if release.outcome == "succeeded"]


def retained_release_ids(entries: Sequence[LedgerEntry], keep: int) -> set[int]:
    """Releases whose physical relations must survive garbage collection.

    The last `keep` successful ones, the live one, and a pending switch's release too:
    the warehouse may already point at it, so dropping its relations could break readers.
    """
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, not {keep}")
    successful = successful_release_ids(entries)
    retained = set(successful[-keep:]) if keep else set()  # [-0:] would keep all
    pending = pending_switch(entries)
    extra = (live_release_id(entries), None if pending is None else pending.release_id)
    return retained | {release_id for release_id in extra if release_id is not None}


def rollback_target(entries: Sequence[LedgerEntry], to: int | None, *, keep: int) -> int:
    """The release a rollback switches to: `to`, or the newest retained one before live.

    `keep` is the environment's retention; only retained, successful releases other than
    the live one are targets, because older ones may have lost their physical relations.
    """
    env = entries[0].env if entries else ""
    live = require_live(entries, env, "roll back from", label=_env_label(entries)).release_id
    targets = _rollback_targets(entries, live, keep)
    if to is None:
        earlier = [release_id for release_id in targets if release_id < live]
        if earlier:
            return earlier[-1]
        raise _no_target(entries, f"has no retained release older than live release {live}", targets)
    if to in targets:
        return to
    reason = "is already live" if to == live else "is not a retained, successful release"
    raise _no_target(entries, f"cannot roll back to release {to}: it {reason}", targets)


def _rollback_targets(entries: Sequence[LedgerEntry], live: int, keep: int) -> list[int]:
    successful = set(successful_release_ids(entries))
    retained = retained_release_ids(entries, keep) & successful
    return sorted(retained - {live})


def _no_target(entries: Sequence[LedgerEntry], problem: str, targets: list[int]) -> NotFoundError:
    choices = ", ".join(str(release_id) for release_id in targets) or "none"
    hint = (
        "choose one of the retained releases, or deploy the commit you want"
        if targets
        else "no other release is retained: deploy the commit you want instead"
    )
    message = f"{_env_label(entries)} {problem}; releases to roll back to: {choices}"
    return NotFoundError(message, hint=hint)


def _env_label(entries: Sequence[LedgerEntry]) -> str:
    return f"environment {entries[0].env!r}" if entries else "the environment (empty ledger)"


@dataclass(frozen=True)
class Hold:
    """A rollback's hold on its environment: `sync` leaves the environment alone while its
    branch brings only content already rolled back from. The live rollback entry holds it,
    and a refresh of it carries the hold on (`carried`); the next successful deploy of the
    environment ends it."""

    env: str
    who: str
    at: str  # ISO 8601, UTC
    from_release: int  # live when the rollback ran
    from_commit: str
    to_release: int  # what the rollback switched to
    to_commit: str
    commits: tuple[str, ...]  # commits rolled back from while the hold lasted
    contents: tuple[str, ...]  # their content (git tree of the dbt project), where known

    def carried(self) -> dict[str, Any]:
        """The hold record a refresh of the held release writes, so the hold outlives it."""
        return {
            "action": "hold",
            "from_release": self.from_release,
            "from_commit": self.from_commit,
            "commits": list(self.commits),
            "contents": list(self.contents),
            "held_release": self.to_release,
            "held_by": self.who,
            "held_at": self.at,
        }

    def covers(self, commit: str, content: str | None) -> bool:
        """`commit` (whose content is `content`) brings nothing new: it was rolled back from."""
        return commit in self.commits or (content is not None and content in self.contents)


def active_hold(entries: Sequence[LedgerEntry]) -> Hold | None:
    """The hold on the live release: its rollback's, or one its refreshes carried on."""
    for entry in reversed(entries):
        if entry.outcome == "succeeded":
            return hold_of(entry)
    return None


def hold_of(entry: LedgerEntry | None) -> Hold | None:
    """The hold `entry` set (a rollback entry's) or carries on (a refresh of a held release:
    new data moves no code, so the hold stays), else None."""
    if entry is None or entry.kind not in ("rollback", "refresh") or entry.hold.get("action") != "hold":
        return None
    record = entry.hold
    return Hold(
        env=entry.env,
        who=str(record.get("held_by", entry.who)),
        at=str(record.get("held_at", entry.at)),
        from_release=int(record.get("from_release", entry.previous_release or 0)),
        from_commit=str(record.get("from_commit", "")),
        to_release=int(record.get("held_release", entry.release_id)),
        to_commit=entry.git_sha,
        commits=tuple(str(c) for c in record.get("commits", ())),
        contents=tuple(str(c) for c in record.get("contents", ())),
    )
