"""`lint()`: sqlfluff over the SQL files a caller names, and nothing else.

The caller passes the files a branch changed; unchanged files are never read. Which of
them are linted is sqlfluff's call, as its CLI would make it: files whose extension is not
in `sql_file_exts`, or that `.sqlfluffignore` (or `ignore_paths`) excludes, or that exceed
`large_file_skip_byte_limit` come back as skipped, with the reason; so do missing files,
and files the templater skips (the dbt templater skips macros and disabled models).

Files are linted in worker processes (pool.py) when there are enough of them to pay for
starting the workers (see PARALLEL_FROM). The dbt templater compiles the dbt project once
and lints every file in one child process that exits afterwards (isolation.py), so dbt's
state and its open DuckDB database never outlive the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlfluff.core.linter.discovery import paths_from_path

from releasekit.config.secrets import Redactor, env_var_names_in
from releasekit.lint.configuration import DbtOptions, LintSettings
from releasekit.lint.isolation import lint_isolated
from releasekit.lint.pool import Job, lint_parallel, start_method
from releasekit.lint.project import DbtProject, read_dbt_project
from releasekit.lint.results import FileLint, FileOutcome, LintRun, SkippedFile
from releasekit.lint.session import LintSession

# Below this many files a serial run wins. A forked worker inherits this process's warm
# session and costs ~0.05 s of CPU; one from the fork server or spawned must load the
# dialect and rules first (~0.5-1 s), against ~0.08 s of CPU to lint a typical model.
# tests/benchmarks/test_lint_benchmark.py measures both on a 2-core machine.
PARALLEL_FROM = {"fork": 4, "forkserver": 16, "spawn": 16}
_NO_VARS: Mapping[str, Any] = MappingProxyType({})


def lint(
    project_dir: Path,
    files: Sequence[Path | str],
    *,
    dialect: str | None = None,
    dbt_vars: Mapping[str, Any] = _NO_VARS,
    environ: Mapping[str, str] | None = None,
    profiles_dir: Path | None = None,
    profile: str | None = None,
    target: str | None = None,
    processes: int | None = None,
    relative_to: Path | None = None,
) -> LintRun:
    """Lint `files` (absolute, or relative to the dbt project folder `project_dir`).

    dialect: used when the project's sqlfluff config names none (the dbt adapter's type).
    dbt_vars: the vars dbt gives the environment (`--vars`); dbt_project.yml's own vars
      are read beneath them, so `{{ var('x') }}` renders the environment's value.
    environ: what `env_var()` reads; this process's environment when None. The dbt
      templater's dbt runs with it as its whole environment.
    profiles_dir, profile, target: what the environment builds with, for the dbt templater
      (`templater = dbt`); None leaves each to the project's sqlfluff config, then to dbt's
      own lookup (DBT_PROFILES_DIR, the project folder's profiles.yml, else ~/.dbt; the
      profile's default target).
    processes: at most this many worker processes (None: one per CPU when the files are
      enough to pay for them; 1: this process only). The dbt templater always lints in one
      child process of its own.
    relative_to: the folder result paths are relative to (default: `project_dir`).

    Raises ConfigError when the sqlfluff config is unusable, ProjectError when
    dbt_project.yml is or dbt cannot compile the project for the dbt templater; problems
    in the files themselves are results, never exceptions.
    """
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    start = time.perf_counter()
    project = read_dbt_project(project_dir)
    settings = LintSettings(
        project=project,
        dialect=dialect,
        dbt_vars={**project.vars, **dbt_vars},
        environ=dict(os.environ if environ is None else environ),
        dbt=DbtOptions(profiles_dir, profile, target, dict(dbt_vars)),
    )
    session = LintSession(settings)
    root = (relative_to or project.directory).resolve()
    jobs, skipped = _select(session, _absolute(project.directory, files), root)
    outcomes, workers = _lint_jobs(session, jobs, processes)
    redact = _redactor(project, [path for path, _ in jobs], settings.environ)
    outcomes = [_redacted(outcome, redact) for outcome in outcomes]
    config = session.config_for(project.directory)
    return LintRun(
        files=tuple(o for o in outcomes if isinstance(o, FileLint)),
        skipped=(*skipped, *(o for o in outcomes if isinstance(o, SkippedFile))),
        seconds=time.perf_counter() - start,
        processes=workers,
        dialect=str(config.get("dialect")),
        templater=session.linter.templater.name,
    )


def _redactor(project: DbtProject, files: Sequence[Path], environ: Mapping[str, str]) -> Redactor:
    """sqlfluff's messages can quote rendered SQL (an unparsable section): the values of
    the env vars that the linted files and the project's macros read are hidden."""
    macros = [path for folder in project.macro_dirs for path in folder.rglob("*.sql")]
    names: set[str] = set()
    for path in [*files, *macros]:
        with contextlib.suppress(OSError):
            names |= env_var_names_in(path.read_text(encoding="utf-8", errors="replace"))
    return Redactor.of(names, environ)


def _redacted(outcome: FileOutcome, redact: Redactor) -> FileOutcome:
    if not isinstance(outcome, FileLint) or not redact.values:
        return outcome
    violations = tuple(dataclasses.replace(v, message=redact(v.message)) for v in outcome.violations)
    error = redact(outcome.error) if outcome.error else outcome.error
    return dataclasses.replace(outcome, violations=violations, error=error)


def _absolute(project_dir: Path, files: Sequence[Path | str]) -> list[Path]:
    unique = dict.fromkeys((project_dir / f).resolve() for f in files)
    return list(unique)


def _select(session: LintSession, paths: list[Path], root: Path) -> tuple[list[Job], list[SkippedFile]]:
    jobs: list[Job] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        reason = _skip_reason(session, path)
        if reason:
            skipped.append(SkippedFile(shown, reason))
        else:
            jobs.append((path, shown))
    return jobs, skipped


def _skip_reason(session: LintSession, path: Path) -> str | None:
    if not path.is_file():
        return "no such file (deleted?)"
    config = session.config_for(path.parent)
    extensions = str(config.get("sql_file_exts", default=".sql")).lower().split(",")
    if not path.name.lower().endswith(tuple(extensions)):
        return f"not a SQL file (sqlfluff's sql_file_exts: {','.join(extensions)})"
    if not paths_from_path(str(path), working_path=path.anchor):
        return "excluded by .sqlfluffignore or ignore_paths"
    limit = int(config.get("large_file_skip_byte_limit", default=0) or 0)
    if limit and path.stat().st_size > limit:
        return f"larger than sqlfluff's large_file_skip_byte_limit ({limit} bytes)"
    return None


def _lint_jobs(session: LintSession, jobs: list[Job], processes: int | None) -> tuple[list[FileOutcome], int]:
    """What linting each file gave, and how many processes linted them."""
    if session.linter.templater.name == "dbt" and jobs:
        return lint_isolated(session, jobs), 1
    workers = _worker_count(processes, len(jobs), session.linter.templater.templates_in_worker)
    return (_lint_serial(session, jobs) if workers == 1 else lint_parallel(session, jobs, workers)), workers


def _worker_count(requested: int | None, files: int, templates_in_worker: bool) -> int:
    if not templates_in_worker or files < 2 or (requested is None and files < PARALLEL_FROM[start_method()]):
        return 1
    return max(1, min(requested or os.cpu_count() or 1, files))


def _lint_serial(session: LintSession, jobs: list[Job]) -> list[FileOutcome]:
    return [session.lint_file(path, shown) for path, shown in jobs]
