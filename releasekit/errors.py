"""One error tree for everything releasekit cannot do.

Findings (a failing test, a lint violation) are data in results, never exceptions.
Exceptions are for what could not run. The CLI maps them to fixed exit codes:

    0  ok
    1  checks found problems (a failed build or test, a refused promotion)
    2  could not run: bad input, config, connection, a busy warehouse
    3  a bug in releasekit (traceback goes to a log file)
    4  the environment is locked: another deploy, promotion or rollback of it is running
    130 interrupted
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130


class ReleasekitError(Exception):
    """Something releasekit could not do. `hint` names the fix."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


class ConfigError(ReleasekitError):
    """releasekit.yml or an environment file is missing, malformed or invalid."""

    def __init__(
        self, message: str, *, file: str | None = None, key: str | None = None, hint: str | None = None
    ) -> None:
        where = ":".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file = file
        self.key = key


class ProjectError(ReleasekitError):
    """The dbt project could not be parsed, or is not what releasekit needs."""


class GitError(ReleasekitError):
    """A git repository, branch or commit is missing or not in the required state."""


class DirtyWorktreeError(GitError):
    """The working tree holds uncommitted changes to the dbt project."""


class WarehouseError(ReleasekitError):
    """The warehouse could not be reached or refused a statement."""


class WarehouseBusyError(WarehouseError):
    """Another process holds the warehouse (DuckDB allows one writer per file)."""


class StateError(ReleasekitError):
    """The state store is unreadable, corrupt, of an unknown version, or unreachable."""


class LockedError(StateError):
    """Another releasekit run holds the environment's lock. Its own exit code, so scripts
    and CI can tell "someone else is on it, retry later" from "this cannot run"."""

    exit_code = EXIT_LOCKED


class LockLostError(LockedError):
    """This run's lock expired or was taken over while it ran (a shared store's lease). The
    run stops at its next write to the store, before it switches anything."""


class LockMismatchError(StateError):
    """`releasekit unlock` named a lock id that is not the one the environment's lock holds."""


class NotFoundError(ReleasekitError):
    """A named environment, release or relation does not exist."""


class BuildFailed(ReleasekitError):
    """A deploy's build or tests failed; the environment stayed on its previous release."""

    exit_code = EXIT_FINDINGS
