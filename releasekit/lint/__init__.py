"""The lint adapter: the only module that imports sqlfluff.

`lint(project_dir, files, dialect=dialect_for_adapter(adapter_type), dbt_vars=...)` runs
sqlfluff over the named SQL files of a dbt project, honouring the project's own sqlfluff
config, and returns plain values (`LintRun`, `FileLint`, `Violation`, `SkippedFile`) for
the checks layer to turn into findings.
"""

from releasekit.lint.configuration import dialect_for_adapter
from releasekit.lint.linter import lint
from releasekit.lint.results import FileLint, LintRun, SkippedFile, Violation

__all__ = ["FileLint", "LintRun", "SkippedFile", "Violation", "dialect_for_adapter", "lint"]
