"""The dbt templater, in a child process of its own that exits when the run is done.

sqlfluff's dbt templater compiles the project with dbt in the process it runs in, and dbt
leaves behind what it keeps per process: the DuckDB database dbt-duckdb holds open (the
file stays locked against every other process, `releasekit status` in another shell
included, until this one exits), the adapter the templater caches per project for good,
dbt's global flags and invocation context. Only dbtcore may import dbt to undo any of that,
so the templater runs where all of it dies with the process: one child, which compiles the
manifest once and lints every file, in the dbt project folder (dbt-duckdb resolves a
relative `path` against the working directory, as when dbt runs there) with the caller's
`environ` as its whole environment (what dbt's `env_var()` and profiles.yml read).

The price is the child's start, measured linting one model of the small test project on a
2-core machine: forked, the child inherits this process's warm sqlfluff and pays for
importing dbt and compiling the manifest, ~2.3 s a run, as a first run in this process
would (~2.5 s); spawned (this process runs other threads), ~3.5 s. Later runs in this
process could have reused a warm dbt (~0.1 s), at the cost of the lock; the Jinja
templater takes ~0.2 s, then ~0.05 s.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlfluff.core import SQLFluffUserError
from sqlfluff.core.errors import SQLTemplaterError

from releasekit.errors import ProjectError
from releasekit.lint.pool import Job, open_pool, worker_session
from releasekit.lint.results import FileOutcome
from releasekit.lint.session import LintSession


class CompileError(Exception):
    """dbt could not load or compile the project (a plain message, so it pickles)."""


def lint_isolated(session: LintSession, jobs: Sequence[Job], method: str | None = None) -> list[FileOutcome]:
    """Lint `jobs` in one child process that exits before this returns; results in the
    order of `jobs`. Raises ProjectError when dbt cannot compile the project."""
    directory = dbt_project_dir(session)
    prepare = functools.partial(_enter, directory, dict(session.settings.environ))
    pool = open_pool(session, 1, method, prepare)
    try:
        return pool.submit(_lint_all, list(jobs)).result()
    except CompileError as exc:
        raise ProjectError(
            f"dbt could not load the project in {directory} to lint it: {exc}",
            hint=f"run `{_debug_command(session, directory)}` to see why",
        ) from None
    finally:
        pool.shutdown(cancel_futures=True)  # waits for the child to exit: its DuckDB handle goes with it


def dbt_project_dir(session: LintSession) -> Path:
    """The dbt project the templater compiles: the project's sqlfluff config may name it."""
    config = session.config_for(session.settings.project.directory)
    named = config.get_section(("templater", "dbt", "project_dir"))
    return Path(os.path.expanduser(str(named or session.settings.project.directory))).resolve()


def _debug_command(session: LintSession, directory: Path) -> str:
    """The `dbt debug` that loads the project as the templater did."""
    config = session.config_for(session.settings.project.directory)
    command = f"dbt debug --project-dir {directory}"
    for option in ("profiles_dir", "profile", "target"):
        value = config.get_section(("templater", "dbt", option))
        command += f" --{option.replace('_', '-')} {value}" if value else ""
    return command


def _enter(directory: Path, environ: Mapping[str, str]) -> None:
    # With a handler on the root logger, the logging.basicConfig() that importing dbt runs
    # (snowplow_tracker's) does nothing: dbt's warnings do not reach the terminal.
    logging.getLogger().addHandler(logging.NullHandler())
    os.chdir(directory)
    os.environ.clear()
    os.environ.update(environ)


def _lint_all(jobs: list[Job]) -> list[FileOutcome]:
    session = worker_session()
    config = session.config_for(session.settings.project.directory)
    try:
        # Compiles the manifest, and puts ephemeral models before the models using them.
        order = list(session.linter.templater.sequence_files([str(path) for path, _ in jobs], config=config))
    except (SQLFluffUserError, SQLTemplaterError) as exc:
        # Keep dbt's own words, after sqlfluff's preamble ("... more information from dbt. ").
        message = str(exc)
        raise CompileError(message.partition("more information from dbt. ")[2] or message) from None
    shown = {str(path): name for path, name in jobs}
    linted = {fname: session.lint_file(Path(fname), shown[fname]) for fname in order}
    return [linted[str(path)] for path, _ in jobs]
