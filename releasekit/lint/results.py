"""What a lint run found, as plain frozen values (no sqlfluff objects).

Paths are POSIX strings relative to the run's `root` (the dbt project folder unless the
caller names another, e.g. the repository root); a file outside the root keeps its
absolute path. Lines and columns count from 1, in the file as written (not as rendered).
"""

from __future__ import annotations

from dataclasses import dataclass

# Codes sqlfluff gives problems that are not rule violations: the file could not be
# rendered (templating), split into tokens (lexing) or parsed as SQL of the dialect.
TEMPLATING = "TMP"
LEXING = "LXR"
PARSING = "PRS"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    column: int
    code: str  # a rule code (LT01, RF03, ...) or TMP, LXR, PRS
    message: str
    warning: bool = False  # the sqlfluff config lists this rule under `warnings`

    @property
    def is_syntax(self) -> bool:
        """True when the file could not be templated, lexed or parsed at this point."""
        return self.code in (TEMPLATING, LEXING, PARSING)


@dataclass(frozen=True)
class FileLint:
    """One linted file."""

    path: str
    violations: tuple[Violation, ...]
    seconds: float
    error: str | None = None  # sqlfluff could not lint the file at all (unreadable, crashed)

    @property
    def passed(self) -> bool:
        """No error and no violation other than warnings."""
        return self.error is None and all(v.warning for v in self.violations)


@dataclass(frozen=True)
class SkippedFile:
    """A file the caller passed that was not linted, and why."""

    path: str
    reason: str


FileOutcome = FileLint | SkippedFile  # what linting one file gives


@dataclass(frozen=True)
class LintRun:
    files: tuple[FileLint, ...]  # in the order the caller passed them
    skipped: tuple[SkippedFile, ...]
    seconds: float
    processes: int  # 1: linted in one process (this one; for the dbt templater, a child)
    dialect: str
    templater: str

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(v for f in self.files for v in f.violations)

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.files)
