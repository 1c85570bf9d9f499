"""The gates a promotion into an environment must pass, each with what to do when it fails.

Gates read only recorded facts: the environments' declared chain, the source's ledger, the
check records of the commit (or of any commit whose dbt project has the same content), the
approvals given on the command line, and whether the destination still matches its own
release (drift). They change nothing. The destination's rules come from `policy.strictest`.

A check is a pass only when it passed and was full: every check the base's policy does not
turn off ran (a `check --only logic` is recorded, and refused here, as partial).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from releasekit.config.model import EnvironmentConfig
from releasekit.state.base import CheckRecord, LedgerEntry


@dataclass(frozen=True)
class Gate:
    name: str  # order | checks | approvals | drift
    passed: bool
    detail: str  # what was found; for a failed gate, what to do
    forced: bool = False  # failed, and let through by --force with a recorded reason


@dataclass(frozen=True)
class GateInputs:
    dst: EnvironmentConfig
    src: EnvironmentConfig
    src_live: LedgerEntry  # the release being promoted
    # recorded `releasekit check` runs of its commit, and of commits with the same content
    checks: Sequence[CheckRecord]
    approvals: Sequence[str]
    who: str  # the person promoting
    drift: Sequence[str]  # how the destination differs from its own release; empty: none
    content: str | None = None  # the git tree of the promoted commit's dbt project


def evaluate(given: GateInputs) -> tuple[Gate, ...]:
    return (_order(given), _checks(given), _approvals(given), _drift(given))


def _order(given: GateInputs) -> Gate:
    dst, src = given.dst, given.src
    allowed = [name for name in (dst.promotes_from, *dst.promotion.allow_from) if name]
    if src.name in allowed:
        return Gate("order", True, f"{dst.name} is promoted from {src.name}")
    declared = ", ".join(allowed) or "nothing (promotes_from is null)"
    return Gate(
        "order",
        False,
        f"{dst.name} is promoted from {declared}, not {src.name}: promote through the chain, or add "
        f"{src.name} to promotion.allow_from in {dst.name}'s environment file",
    )


def _checks(given: GateInputs) -> Gate:
    sha = given.src_live.git_sha
    passed = [record for record in _of_this_content(given) if record.passed and record.full]
    if passed:
        return Gate("checks", True, _passed_detail(passed[-1], sha))
    if given.dst.promotion.requires == "checked":
        return Gate(
            "checks",
            False,
            f"{given.dst.name} requires a passing `releasekit check` of {sha[:12]}, or of a commit whose "
            f"dbt project is identical, that ran every check its policy turns on: {_why_none(given)}",
        )
    release = given.src_live.release_id
    return Gate("checks", True, f"{given.src.name} release {release} built and tested {sha[:12]}")


def _of_this_content(given: GateInputs) -> list[CheckRecord]:
    sha, content = given.src_live.git_sha, given.content
    return [r for r in given.checks if r.git_sha == sha or (content is not None and r.content == content)]


def _passed_detail(record: CheckRecord, sha: str) -> str:
    if record.git_sha == sha:
        return f"`releasekit check` passed for {sha[:12]} ({record.at})"
    return (
        f"`releasekit check` passed for {record.git_sha[:12]} ({record.at}), whose dbt project is "
        f"identical to {sha[:12]}'s (tree {(record.content or '')[:12]})"
    )


_SKIPPED_BECAUSE = {
    "only": "left out with --only",
    "blocked": "not run after a failed build",
    "unknown": "skipped, for a reason an older releasekit did not record",
}


def _why_none(given: GateInputs) -> str:
    records = _of_this_content(given)
    partial = [r for r in records if r.passed and not r.full]
    if partial:
        last = partial[-1]
        left_out = "; ".join(
            f"{name} {_SKIPPED_BECAUSE.get(reason, reason)}"
            for name, reason in last.skipped.items()
            if reason != "off"
        )
        return (
            f"the recorded check of {last.git_sha[:12]} ran only {', '.join(last.ran) or 'nothing'} "
            f"({left_out}); run a full `releasekit check` on that commit's branch"
        )
    ran = f"{len(records)} check(s) recorded, none passed" if records else "no check recorded"
    return f"{ran}; run `releasekit check` on that commit's branch and fix what it finds"


def _approvals(given: GateInputs) -> Gate:
    needed = given.dst.promotion.approvals
    approvers = sorted({name.strip() for name in given.approvals if name.strip()})
    refused = [] if given.dst.promotion.self_approval else [a for a in approvers if _same(a, given.who)]
    counted = [a for a in approvers if a not in refused]
    if len(counted) >= needed:
        shown = ", ".join(counted) or "none needed"
        return Gate("approvals", True, f"{len(counted)} of {needed} approval(s): {shown}")
    detail = f"{given.dst.name} needs {needed} approval(s), has {len(counted)}"
    if refused:
        detail += f" ({', '.join(refused)} cannot approve their own promotion)"
    return Gate("approvals", False, detail + ": add --approve NAME for each approver")


def _drift(given: GateInputs) -> Gate:
    if not given.drift:
        return Gate("drift", True, f"{given.dst.name} matches its live release")
    return Gate(
        "drift",
        False,
        f"{given.dst.name} has drifted: {'; '.join(given.drift)}. Find out why (`releasekit status`), or "
        'override with --force --reason "..." (recorded in the ledger)',
    )


def _same(approver: str, who: str) -> bool:
    """`who` is git's "Name <email>"; an approver may give either part."""
    name, _, email = who.partition(" <")
    return approver.lower() in {who.lower(), name.lower(), email.rstrip(">").lower()}
