"""`releasekit init`: write releasekit.yml and the reference environments into a repository.

Pure filesystem work. The caller (which knows dbt) passes the dbt project folder and the
profile's target names. The result must load as is: many projects have a single target
(often `dev`), so every environment uses the profile's default target unless the profile
has a target named after it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from releasekit.config.loader import CONFIG_FILE
from releasekit.config.model import DEFAULT_ENVIRONMENTS_DIR, DEFAULT_STATE_PATH
from releasekit.errors import ConfigError, ProjectError

ENVIRONMENT_NAMES = ("dev", "staging", "prod")
GITIGNORE_LINE = f"{DEFAULT_STATE_PATH}/"
_TARGET_LINE = re.compile(r"^target:.*$", re.MULTILINE)
_BRANCH_LINE = re.compile(r"^branch:.*$", re.MULTILINE)
_PLAIN_YAML = re.compile(r"[A-Za-z0-9_./-]+")

CONFIG_TEMPLATE = """\
# releasekit configuration. Every key but `version` is optional; commented keys show
# their defaults. Environments are declared in {environments_dir}/<name>.yml.
# Precedence, lowest first: built-in defaults < this file (its `defaults:` block for every
# environment) < {environments_dir}/<name>.yml < RELEASEKIT_* variables < command-line flags.
version: 1

dbt:
  project_dir: {project_dir}  # folder holding dbt_project.yml, relative to this file
  # profiles_dir: null  # null: dbt's lookup (profiles.yml in the project dir, else ~/.dbt)
  # profile: null       # use this profile instead of dbt_project.yml's `profile`

# Where releasekit builds immutable model versions; consumers read views onto them.
# physical_schema: rk__physical

# state:
#   path: {state_path}  # ledger, registry and locks; git-ignored (dbt's caches always)
#   url: s3://bucket/prefix  # share them with the team and CI instead (README: Shared state on S3)

# environments_dir: {environments_dir}

# warehouse:
#   lock_timeout_ms: 500  # PostgreSQL: the longest a switch may block a reader; keep it
#                         # under the server's deadlock_timeout (1000 ms by default)

# defaults:             # applied to every environment before its own file
#   retention: 3        # successful releases kept for rollback
#   target: null        # null: the profile's default target
#   vars: {{}}            # dbt vars shared by every environment
#   grants: {{}}          # PostgreSQL: privilege -> roles, granted on the views at every switch
#   checks: {{lint: error, build: error, logic: error, diff: error, allow_breaking: false}}

# Statistical process control: every version a deploy or refresh writes is measured and
# judged against that model's history in the environment (README: Statistical process control).
# spc:
#   severity: warn      # warn: publish and alert | error: hold the data back | off
#   metrics: [row_count, null_fraction, mean]  # also: min, max, newest
#   window: 30          # the last published points the control limits are learned from
#   min_history: 8      # fewer points: nothing is judged yet
#   sigma: 3            # the limits' half-width, in standard deviations
#   tolerance: 0.02     # never narrower than this share of the centre line
# alerts:
#   webhook: https://hooks.slack.com/services/...  # or RELEASEKIT_ALERT_WEBHOOK (keep secrets there)
"""


@dataclass(frozen=True)
class InitResult:
    """What `init_project` did, as absolute paths."""

    root: Path
    written: tuple[Path, ...]  # created, overwritten (with force) or, for .gitignore, appended
    skipped: tuple[Path, ...]  # left as they were (.gitignore already ignores the state)


def init_project(
    root: Path,
    *,
    dbt_project_dir: Path,
    target_names: Sequence[str],
    default_target: str,
    default_branch: str = "main",
    force: bool = False,
) -> InitResult:
    """Write releasekit.yml and environments/{dev,staging,prod}.yml; ignore the state folder.
    dev follows `default_branch` (the repository's), staging `staging`, prod `prod`."""
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder", hint="run `releasekit init` in your repo")
    contents = _render(root, dbt_project_dir, target_names, default_target, default_branch)
    _refuse_existing(root, contents, force)  # before any write: all or nothing
    for path, text in contents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    gitignore = root / ".gitignore"
    changed = _ignore_state(gitignore)
    return InitResult(
        root=root,
        written=(*contents, *([gitignore] if changed else [])),
        skipped=() if changed else (gitignore,),
    )


def find_dbt_project(root: Path) -> Path:
    """The folder holding the repository's one dbt project: `root`, or one level down."""
    if (root / "dbt_project.yml").exists():
        return root
    found = sorted(p.parent for p in root.glob("*/dbt_project.yml"))
    if len(found) == 1:
        return found[0]
    raise ProjectError(
        f"no single dbt project found in {root} (looked for dbt_project.yml at the top and one level down)",
        hint="run `releasekit init` at the root of a git repository that holds one dbt project",
    )


def reference_environments() -> Traversable:
    """The reference environment files: in the wheel, else in the source checkout."""
    packaged = files("releasekit") / "resources" / "environments"
    if packaged.is_dir():
        return packaged
    # Editable installs run from the checkout, whose top level holds environments/.
    checkout = Path(__file__).resolve().parents[2] / "environments"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"releasekit's reference environments are missing: {checkout}")


def _render(
    root: Path, dbt_project_dir: Path, target_names: Sequence[str], default_target: str, default_branch: str
) -> dict[Path, str]:
    project_dir = Path(os.path.relpath((root / dbt_project_dir).resolve(), root)).as_posix()
    config = CONFIG_TEMPLATE.format(
        project_dir=_yaml_text(project_dir),
        state_path=DEFAULT_STATE_PATH,
        environments_dir=DEFAULT_ENVIRONMENTS_DIR,
    )
    contents = {root / CONFIG_FILE: config}
    references = reference_environments()
    for name in ENVIRONMENT_NAMES:
        text = (references / f"{name}.yml").read_text(encoding="utf-8")
        path = root / DEFAULT_ENVIRONMENTS_DIR / f"{name}.yml"
        text = _set_target(text, name, target_names, default_target)
        if name == "dev":
            text = _BRANCH_LINE.sub(lambda _: f"branch: {_yaml_text(default_branch)}", text, count=1)
        contents[path] = text
    return contents


def _set_target(text: str, env: str, target_names: Sequence[str], default_target: str) -> str:
    """Point the environment at its namesake target if the profile has one."""
    if env in target_names:
        line = f'target: {_yaml_text(env)}  # the profile\'s target named "{env}"'
    else:
        line = f"target: null  # null: the profile's default target ({json.dumps(default_target)})"
    replaced, count = _TARGET_LINE.subn(lambda _: line, text, count=1)
    if count != 1:
        raise ValueError(f"reference environment {env}.yml has no `target:` line")
    return replaced


def _yaml_text(value: str) -> str:
    """A YAML scalar for `value`: plain when safe, else double-quoted (JSON is YAML)."""
    return value if _PLAIN_YAML.fullmatch(value) else json.dumps(value)


def _refuse_existing(root: Path, contents: Mapping[Path, str], force: bool) -> None:
    existing = [path for path in contents if path.exists()]
    if existing and not force:
        names = ", ".join(path.relative_to(root).as_posix() for path in existing)
        raise ConfigError(
            f"releasekit is already set up here: {names} exist",
            hint="run `releasekit init --force` to overwrite them",
        )


def _ignore_state(gitignore: Path) -> bool:
    """Add the state folder to .gitignore unless it is there; keep the user's text as is."""
    data = gitignore.read_bytes().decode("utf-8") if gitignore.exists() else ""
    entries = {line.strip().strip("/") for line in data.splitlines()}
    if DEFAULT_STATE_PATH in entries:  # `.releasekit`, `/.releasekit/` and the like
        return False
    newline = "\r\n" if "\r\n" in data else "\n"
    separator = newline if data and not data.endswith("\n") else ""
    gitignore.write_bytes(f"{data}{separator}{GITIGNORE_LINE}{newline}".encode())
    return True
