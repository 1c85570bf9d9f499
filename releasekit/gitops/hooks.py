"""Install and uninstall releasekit's git hooks: small shell shims that call `releasekit`.

The shim (releasekit/resources/hook-tmpl) only cleans git's variables, runs any hook it
displaced, and hands over to `releasekit hooks hook-impl`; hook_runtime decides what a hook
invocation does. A hook that was there before is kept as `<name>.releasekit-chained`, run
first with the same arguments and stdin, and restored by `uninstall`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from releasekit.errors import GitError

HOOK_NAMES = ("post-checkout", "reference-transaction")
MARKER = "# releasekit-hook v1"
CHAINED_SUFFIX = ".releasekit-chained"
_TEMPLATE_START = "# start templated\n"
_TEMPLATE_END = "# end templated\n"


@dataclass(frozen=True)
class HooksInstalled:
    hooks_dir: Path
    written: tuple[Path, ...]
    chained: tuple[Path, ...]  # user hooks moved aside; our shims run them first


@dataclass(frozen=True)
class HooksUninstalled:
    hooks_dir: Path
    removed: tuple[Path, ...]
    restored: tuple[Path, ...]  # user hooks put back where they were
    foreign: tuple[Path, ...]  # not ours: left alone


def hooks_dir(start: Path) -> Path:
    """Where git looks for this repository's hooks: honours core.hooksPath, and a linked
    worktree shares its main repository's hooks."""
    try:
        # A subprocess, not GitRepo: git's own answer is where git's hook runner will look.
        found = subprocess.run(
            ["git", "rev-parse", "--git-path", "hooks"], cwd=start, capture_output=True, text=True
        )
    except (FileNotFoundError, NotADirectoryError):
        raise GitError(
            f"cannot run git in {start}", hint="install git, and check the folder exists"
        ) from None
    if found.returncode != 0:
        raise GitError(
            f"{start} is not inside a git repository",
            hint="run `git init` there, or point releasekit at your repository with -C",
        )
    return (start / found.stdout.strip()).resolve()


def render_shim(hook: str, python: str) -> str:
    template = resources.files("releasekit.resources").joinpath("hook-tmpl").read_text(encoding="utf-8")
    before, rest = template.split(_TEMPLATE_START)
    _, after = rest.split(_TEMPLATE_END)
    values = f"HOOK={shlex.quote(hook)}\nINSTALL_PYTHON={shlex.quote(python)}\n"
    return before + _TEMPLATE_START + values + _TEMPLATE_END + after


def is_ours(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return MARKER.encode() in file.read(512)
    except OSError:  # absent, a dangling link, a folder
        return False


def install_hooks(start: Path, *, python: str = sys.executable) -> HooksInstalled:
    """Write our shims; move a user's hook aside to be chained. Running it again only refreshes
    the shims. `python` is the interpreter the shims call first (this one: the one that has
    releasekit); they fall back to `releasekit` on PATH."""
    folder = hooks_dir(start)
    _check_chained_slots_free(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chained = []
    for hook in HOOK_NAMES:
        path = folder / hook
        if os.path.lexists(path) and not is_ours(path):
            os.replace(path, _chained(path))
            chained.append(_chained(path))
        _write_executable(path, render_shim(hook, python))
    return HooksInstalled(folder, tuple(folder / hook for hook in HOOK_NAMES), tuple(chained))


def uninstall_hooks(start: Path) -> HooksUninstalled:
    """Remove exactly our shims and put back what they displaced; touch nothing else."""
    folder = hooks_dir(start)
    removed, restored, foreign = [], [], []
    for hook in HOOK_NAMES:
        path = folder / hook
        if is_ours(path):
            path.unlink()
            removed.append(path)
        elif os.path.lexists(path):
            foreign.append(path)
            continue  # someone replaced our shim: their hook stays, and so does the chained one
        if os.path.lexists(_chained(path)):
            os.replace(_chained(path), path)
            restored.append(path)
    return HooksUninstalled(folder, tuple(removed), tuple(restored), tuple(foreign))


def _check_chained_slots_free(folder: Path) -> None:
    """Refuse before writing anything if chaining a hook would overwrite an earlier chained one."""
    for hook in HOOK_NAMES:
        path = folder / hook
        if os.path.lexists(path) and not is_ours(path) and os.path.lexists(_chained(path)):
            raise GitError(
                f"both {path} and {_chained(path)} exist, and neither is releasekit's shim",
                hint=f"merge them into {path.name} (or delete the one you no longer need), "
                "then run `releasekit hooks install` again",
            )


def _chained(path: Path) -> Path:
    return path.with_name(path.name + CHAINED_SUFFIX)


def _write_executable(path: Path, text: str) -> None:
    # Write beside and rename, so git never runs a half-written hook.
    partial = path.with_name(f".{path.name}.releasekit-tmp")
    partial.write_text(text, encoding="utf-8", newline="\n")
    mode = partial.stat().st_mode
    partial.chmod(mode | (mode & 0o444) >> 2)  # executable wherever readable, like pre-commit
    os.replace(partial, path)
