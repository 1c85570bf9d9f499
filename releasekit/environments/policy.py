"""The rules a commit declares: releasekit's configuration as a commit holds it, how a
branch's policies differ from it, and the content of the dbt project a check verified.

Gates judge a change by rules that were reviewed and deployed, never by the change's own
files: `releasekit check` reads the `checks:` policy from the base environment's deployed
commit, and `releasekit promote` reads `promotion:` from the destination's deployed commit
and the promoted commit (whichever is stricter). The files are read from git's object
store, so neither the user's checkout nor a worktree is involved.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from releasekit.config.loader import CONFIG_FILE, environments_folder, load_config
from releasekit.config.model import CheckPolicy, EnvironmentConfig, ProjectConfig, PromotionPolicy
from releasekit.errors import ConfigError
from releasekit.gitops.repo import GitRepo

_YAML = (".yml", ".yaml")


def committed(sha: str) -> str:
    """The commit a recorded sha names: a release deployed from a dirty tree records
    `<sha>-dirty`, and its committed files are `<sha>`'s."""
    return sha.removesuffix("-dirty")


def config_at(repo: GitRepo, config_root: Path, commit: str) -> ProjectConfig | None:
    """releasekit.yml and the environment files as `commit` has them, validated as
    `load_config` validates the working tree's (RELEASEKIT_* variables and flags aside: they
    set no policy). None when the commit has no releasekit.yml."""
    commit = committed(commit)
    prefix = _relative(config_root, repo.root)
    text = repo.read_at(commit, f"{prefix}/{CONFIG_FILE}")
    if text is None:
        return None
    with tempfile.TemporaryDirectory(prefix="releasekit-config-") as folder:
        root = Path(folder)
        (root / CONFIG_FILE).write_bytes(text)
        env_dir = environments_folder(root)
        if env_dir.is_relative_to(root.resolve()):
            env_dir.mkdir(parents=True, exist_ok=True)
            inside = env_dir.relative_to(root.resolve()).as_posix()
            for name, data in repo.files_in(commit, f"{prefix}/{inside}").items():
                if name.endswith(_YAML):
                    (env_dir / name).write_bytes(data)
        try:
            return load_config(root, environ={})
        except ConfigError as exc:
            raise ConfigError(
                f"releasekit's configuration at commit {commit[:12]} does not load:\n{exc.message}",
                hint="the gates read their rules from that commit; deploy a commit whose "
                "configuration loads (`releasekit plan` shows what is wrong in a checkout of it)",
            ) from None


def project_content(repo: GitRepo, project_dir: Path, git_sha: str) -> str | None:
    """What a check of `git_sha` verified: the git tree id of the dbt project's folder at that
    commit (the top tree when the project is at the top). None for a dirty tree, whose
    content no commit holds."""
    if git_sha.endswith("-dirty"):
        return None
    return repo.tree_id(git_sha, _relative(project_dir, repo.root))


def policy_changes(before: ProjectConfig | None, after: ProjectConfig) -> list[str]:
    """Each `checks:` and `promotion:` key `after` sets differently from `before`, one line
    each: `environments/dev.yml: checks.build off (base: error)`. An environment `before`
    does not declare is compared with the defaults."""
    changes: list[str] = []
    for name, env in after.environments.items():
        old = before.environments.get(name) if before is not None else None
        label = _label(env, after)
        changes += _differences(label, "checks", env.checks, old.checks if old else CheckPolicy())
        changes += _differences(
            label, "promotion", env.promotion, old.promotion if old else PromotionPolicy()
        )
    return changes


def _differences(label: str, section: str, now: Any, then: Any) -> list[str]:
    return [
        f"{label}: {section}.{field.name} {_shown(getattr(now, field.name))} "
        f"(base: {_shown(getattr(then, field.name))})"
        for field in dataclasses.fields(now)
        if getattr(now, field.name) != getattr(then, field.name)
    ]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return str(value)


def _label(env: EnvironmentConfig, config: ProjectConfig) -> str:
    if env.source_file is None:
        return env.name
    try:
        return env.source_file.relative_to(config.root).as_posix()
    except ValueError:
        return str(env.source_file)


def _relative(path: Path, repo_root: Path) -> str:
    try:
        return path.resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        return "."
