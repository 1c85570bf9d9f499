"""Linting files one at a time in one process, with sqlfluff's Linter.

A session keeps one Linter (its templater is chosen by the project folder's config, as
sqlfluff's own CLI chooses it from the folder it runs in) and one config per folder. A
serial run uses one session in place; each worker process of a parallel run has its own
(see pool.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlfluff.core import FluffConfig, Linter
from sqlfluff.core.errors import SQLBaseError
from sqlfluff.core.helpers.file import get_encoding

from releasekit.lint.configuration import LintSettings, build_config, load_folder
from releasekit.lint.results import FileLint, FileOutcome, SkippedFile, Violation

# sqlfluff logs warnings (an ignored file, an unlintable one); with no handler anywhere
# Python would print them to stderr. releasekit's core never prints: the caller's logging
# configuration decides, and the same facts come back in the results.
logging.getLogger("sqlfluff").addHandler(logging.NullHandler())


class LintSession:
    def __init__(self, settings: LintSettings, loaded: Mapping[Path, dict[str, Any]] | None = None) -> None:
        self.settings = settings
        self.loaded: dict[Path, dict[str, Any]] = dict(loaded or {})  # folder -> project config read
        self._configs: dict[Path, FluffConfig] = {}
        self.linter = Linter(config=self.config_for(settings.project.directory))

    def warm_up(self) -> None:
        """Load what every file needs (the rules) now, e.g. before forking workers."""
        self.linter.get_rulepack(self.config_for(self.settings.project.directory))

    def config_for(self, folder: Path) -> FluffConfig:
        if folder not in self._configs:
            if folder not in self.loaded:
                self.loaded[folder] = load_folder(folder)
            self._configs[folder] = build_config(self.settings, folder, self.loaded[folder])
        return self._configs[folder]

    def lint_file(self, path: Path, shown_as: str) -> FileOutcome:
        """Lint one existing file; `shown_as` is the path the results carry. A file the
        templater skips (the dbt templater skips macros, disabled models and, unless told
        otherwise, models dbt cannot compile) comes back as skipped, with its reason."""
        start = time.perf_counter()
        config = self.config_for(path.parent)
        try:
            encoding = get_encoding(str(path), str(config.get("encoding", default="autodetect")))
            raw = path.read_text(encoding=encoding, errors="backslashreplace")
            with _warnings_logged("sqlfluff.linter") as warnings:
                linted = self.linter.lint_string(raw, fname=str(path), config=config, encoding=encoding)
            found = linted.get_violations(filter_ignore=True, filter_warning=False)
        except Exception as exc:  # one file sqlfluff cannot handle must not sink the run
            return FileLint(shown_as, (), time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
        if linted.templated_file is None and not found:
            return SkippedFile(shown_as, self._skip_reason(str(path), warnings))
        violations = tuple(_violation(shown_as, v) for v in found)
        return FileLint(shown_as, violations, time.perf_counter() - start)

    def _skip_reason(self, fname: str, warnings: list[str]) -> str:
        # sqlfluff only logs why (SQLFluffSkipFile's message): "Skipped file F because ...".
        why = warnings[-1] if warnings else "no reason given"
        why = why.removeprefix(f"Skipped file {fname} because ")
        return f"sqlfluff's {self.linter.templater.name} templater skipped it: {why}"


@contextmanager
def _warnings_logged(name: str) -> Iterator[list[str]]:
    """The warnings `name`'s logger records in this thread meanwhile."""
    recorder = _Recorder()
    logger = logging.getLogger(name)
    logger.addHandler(recorder)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


def _violation(path: str, error: SQLBaseError) -> Violation:
    return Violation(
        path=path,
        line=int(error.line_no or 1),
        column=int(error.line_pos or 1),
        code=error.rule_code(),
        message=error.desc(),
        warning=bool(error.warning),
    )
