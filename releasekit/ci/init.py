"""`releasekit ci init github|gitlab`: write the CI templates, filled in, into a repository.

GitHub: one workflow per template in .github/workflows/. GitLab: releasekit.gitlab-ci.yml at
the top, and a .gitlab-ci.yml that includes it when the repository has none; an existing
.gitlab-ci.yml is the user's and is never written: the result says what to add to it.

All or nothing: without `force`, any file that exists refuses the whole run, naming them
all. Each file is written beside its place and renamed over it, every one staged before the
first rename, so no file is ever half-written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from releasekit.ci.context import CiContext
from releasekit.ci.templates import PLATFORMS, render
from releasekit.errors import ConfigError

GITHUB_WORKFLOWS = Path(".github") / "workflows"
GITLAB_FILE = "releasekit.gitlab-ci.yml"
GITLAB_ROOT_FILE = ".gitlab-ci.yml"
GITLAB_INCLUDE = f"include:\n  - local: /{GITLAB_FILE}\n"
# Templates that only make sense when some environment is promoted from another.
_NEEDS_TARGETS = frozenset({"releasekit-promote.yml"})


@dataclass(frozen=True)
class CiInitResult:
    platform: str
    root: Path
    written: tuple[Path, ...]  # created or, with force, overwritten
    skipped: tuple[str, ...]  # templates left out (no environment is promoted into)
    include: str | None  # what to add to the existing .gitlab-ci.yml; None: nothing to do
    context: CiContext


def init_ci(root: Path, platform: str, context: CiContext, *, force: bool = False) -> CiInitResult:
    if platform not in PLATFORMS:
        raise ConfigError(f"unknown CI platform {platform!r}", hint=f"choose one of: {', '.join(PLATFORMS)}")
    templates = render(platform, context.variables())
    rendered = [r for r in templates if context.targets or r.name not in _NEEDS_TARGETS]
    skipped = tuple(r.name for r in templates if r not in rendered)
    if platform == "github":
        contents = {root / GITHUB_WORKFLOWS / r.name: r.text for r in rendered}
        include = None
    else:
        contents = {root / GITLAB_FILE: rendered[0].text}
        include = _gitlab_include(root / GITLAB_ROOT_FILE, contents)
    _refuse_existing(root, platform, contents, force)
    _write_all(contents)
    return CiInitResult(platform, root, tuple(contents), skipped, include, context)


def _gitlab_include(root_file: Path, contents: dict[Path, str]) -> str | None:
    """Add a .gitlab-ci.yml that includes releasekit's file when there is none; when there
    is one that does not include it yet, return what to add to it."""
    if not root_file.exists():
        contents[root_file] = GITLAB_INCLUDE
        return None
    return None if GITLAB_FILE in root_file.read_text(encoding="utf-8") else GITLAB_INCLUDE


def _refuse_existing(root: Path, platform: str, contents: Mapping[Path, str], force: bool) -> None:
    existing = [path for path in contents if path.exists()]
    if existing and not force:
        names = ", ".join(path.relative_to(root).as_posix() for path in existing)
        raise ConfigError(
            f"releasekit's CI files already exist: {names}; nothing was written",
            hint=f"run `releasekit ci init {platform} --force` to overwrite them (edits to them are lost)",
        )


def _write_all(contents: Mapping[Path, str]) -> None:
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.releasekit-tmp")
            staged.append((partial, path))
            with open(partial, "x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for partial, path in staged:
            os.replace(partial, path)
    finally:
        for partial, _ in staged:
            partial.unlink(missing_ok=True)
