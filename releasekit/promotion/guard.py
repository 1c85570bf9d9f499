"""A promoted environment deploys only what was promoted into it.

An environment with `promotes_from` gets its releases from `releasekit promote` (through
its gates: order, checks, approvals, drift), or from `releasekit sync`, which deploys its
branch head (a branch only promotions and reviewed merges move). A plain `releasekit
deploy` serves the checkout's commit, so for such an environment that commit must be its
branch head. Anything else is refused, naming the fix, unless forced with a reason, which
the release records.
"""

from __future__ import annotations

from typing import Any

from releasekit.config.model import EnvironmentConfig
from releasekit.errors import UnpromotedDeployError
from releasekit.gitops.repo import GitRepo
from releasekit.workspace import Workspace


def unpromoted(repo: GitRepo, env: EnvironmentConfig, commit: str) -> str | None:
    """Why deploying `commit` into `env` bypasses its promotion, or None when it does not:
    `env` has no `promotes_from`, or `commit` is its branch head (the local branch, or the
    remote's copy of it as of the last fetch)."""
    if env.promotes_from is None:
        return None
    where = f"{env.name} is promoted from {env.promotes_from} and deploys only its branch head"
    if env.branch is None:
        return f"{where}, but names no branch"
    heads = _heads(repo, env.branch)
    if commit in heads:
        return None
    shown = _commit(commit)
    if not heads:
        return f"{where}; branch {env.branch} does not exist, and this checkout is at {shown}"
    return f"{where}; branch {env.branch} is at {heads[0][:12]}, this checkout at {shown}"


def guard(repo: GitRepo, env: EnvironmentConfig, commit: str, *, reason: str | None) -> dict[str, Any]:
    """Refuse a deploy `unpromoted` objects to, unless `reason` (--force --reason) is given:
    then return what the release records about it (empty when nothing was bypassed)."""
    problem = unpromoted(repo, env, commit)
    if problem is None:
        return {}
    if reason is None:
        raise UnpromotedDeployError(f"refusing to deploy {env.name}: {problem}", hint=fix(env))
    head = repo.branch_head(env.branch) if env.branch else None
    return {"reason": reason, "branch": env.branch, "branch_head": head, "commit": commit, "refused": problem}


def guard_deploy(
    workspace: Workspace, env: EnvironmentConfig, commit: str, *, reason: str | None
) -> dict[str, Any]:
    """`guard`, for a declared environment with `promotes_from`; nothing for another."""
    return guard(workspace.repo, env, commit, reason=reason) if promoted(workspace, env) else {}


def plan_warning(workspace: Workspace, env: EnvironmentConfig, commit: str) -> str | None:
    """What `releasekit plan` says when `releasekit deploy` would refuse `commit` into
    `env`, with the fix; None when the deploy would take it."""
    problem = unpromoted(workspace.repo, env, commit) if promoted(workspace, env) else None
    if problem is None:
        return None
    return f"`releasekit deploy {env.name}` would refuse this commit: {problem}\n  hint: {fix(env)}"


def promoted(workspace: Workspace, env: EnvironmentConfig) -> bool:
    """`env` is declared and takes its releases from promotions (it has `promotes_from`)."""
    return workspace.is_declared(env) and env.promotes_from is not None


def fix(env: EnvironmentConfig) -> str:
    if env.branch is None:
        return f"set `branch:` in {env.name}'s environment file, then `releasekit promote {env.name}`"
    return (
        f"promote it through its gates: releasekit promote {env.name}; or deploy the head of branch "
        f"{env.branch}: releasekit sync {env.name}; to deploy this commit anyway: releasekit deploy "
        f'{env.name} --force --reason "..." (recorded in the ledger)'
    )


def _heads(repo: GitRepo, branch: str) -> list[str]:
    local = repo.resolve(f"refs/heads/{branch}")
    remote = repo.remote_for(branch)
    tracked = None if remote is None else repo.resolve(f"refs/remotes/{remote}/{branch}")
    return [sha for sha in dict.fromkeys((local, tracked)) if sha is not None]


def _commit(commit: str) -> str:
    if commit.endswith("-dirty"):
        return f"{commit.removesuffix('-dirty')[:12]} with uncommitted changes"
    return commit[:12]
