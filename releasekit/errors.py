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

from collections.abc import Sequence

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


class NotFastForwardError(GitError):
    """The branch has commits the promoted commit lacks, and merging is not allowed."""


class MergeConflictError(GitError):
    """Merging the promoted commit into the branch conflicts; nothing was changed."""

    def __init__(self, message: str, *, files: Sequence[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.files = tuple(files)


class RefMovedError(GitError):
    """Someone else moved the ref between reading it and updating it."""


class PushRejectedError(GitError):
    """The remote refused some of the pushed refs (the local refs are already updated)."""


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


class NoLiveReleaseError(NotFoundError):
    """`env` serves no release yet, and what was asked needs one: to promote it, roll back
    from it, branch from it or check against it. `label` names the environment in the
    message (default: its quoted name)."""

    def __init__(self, env: str, purpose: str, *, label: str | None = None) -> None:
        super().__init__(
            f"{label or repr(env)} has no live release to {purpose}",
            hint=f"deploy it first: releasekit deploy {env}" if env else "deploy the environment first",
        )
        self.env = env


class RefreshError(ReleasekitError):
    """A refresh could not run (a branch environment, a live release whose code is not in
    git or does not reproduce, a source it cannot read); nothing changed."""


class UnpromotedDeployError(ReleasekitError):
    """A deploy of a promoted environment named a commit that is not its branch head."""


class PromotionRefused(ReleasekitError):
    """A promotion's gates said no, and nothing changed. The API returns a refusal as data
    (`PromoteResult.refused`); the CLI and the quickstart raise this to end with exit 1."""

    exit_code = EXIT_FINDINGS


class CommentError(ReleasekitError):
    """The forge refused or could not be reached; nothing more was changed."""
