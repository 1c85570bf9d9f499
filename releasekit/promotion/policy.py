"""Where a promotion's gates come from: the stricter of what is live and what is promoted.

A destination's `promotion:` policy is read from every place that declares it, and each
rule takes its strictest value: the destination's deployed commit (reviewed, live), the
commit being promoted (so a promotion cannot loosen the rules it arrives with either), and
the checked-out configuration (which can only add to them). A commit that declares no such
environment (or no releasekit configuration) adds nothing.

    approvals       the largest number
    requires        `checked` if any says so
    self_approval   false if any says so
    merge           `ff-only` if any says so
    promotes_from / allow_from   the sources every one allows
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from releasekit.config.model import EnvironmentConfig, PromotionPolicy
from releasekit.environments.policy import config_at
from releasekit.gitops.repo import GitRepo


@dataclass(frozen=True)
class Declared:
    where: str  # "prod's deployed commit 1a2b3c4d5e6f", for messages
    env: EnvironmentConfig


def declared_at(
    repo: GitRepo, config_root: Path, name: str, commits: Sequence[tuple[str, str]]
) -> list[Declared]:
    """Environment `name` as each of `commits` ((what it is, sha)) declares it."""
    found = []
    for what, sha in commits:
        config = config_at(repo, config_root, sha)
        env = config.environments.get(name) if config is not None else None
        if env is not None:
            found.append(Declared(f"{what} {sha[:12]}", env))
    return found


def strictest(dst: EnvironmentConfig, declared: Sequence[Declared]) -> EnvironmentConfig:
    """`dst` with each promotion rule at its strictest over `dst` itself and `declared`."""
    envs = [dst, *(d.env for d in declared)]
    policies = [env.promotion for env in envs]
    allowed = set.intersection(*(_sources(env) for env in envs))
    promotes_from = dst.promotes_from if dst.promotes_from in allowed else None
    promotion = PromotionPolicy(
        merge="merge" if all(p.merge == "merge" for p in policies) else "ff-only",
        approvals=max(p.approvals for p in policies),
        self_approval=all(p.self_approval for p in policies),
        requires="checked" if any(p.requires == "checked" for p in policies) else "deployed",
        allow_from=tuple(sorted(allowed - {promotes_from})),
    )
    return dataclasses.replace(dst, promotes_from=promotes_from, promotion=promotion)


def _sources(env: EnvironmentConfig) -> set[str]:
    return {name for name in (env.promotes_from, *env.promotion.allow_from) if name}
