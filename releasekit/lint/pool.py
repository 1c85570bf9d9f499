"""Linting files in worker processes, one LintSession in each.

On Linux, when this process runs no other thread, workers are forked from it and inherit
its session warm (sqlfluff imported, dialect and rules loaded): they start at once.
Otherwise forking is unsafe (a lock another thread holds would stay held in the child):
workers then come from a fork server that imported sqlfluff once, or are spawned, and
each builds its session from the settings and the config files this process read.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from releasekit.lint.configuration import LintSettings
from releasekit.lint.results import FileOutcome
from releasekit.lint.session import LintSession

Job = tuple[Path, str]  # the file, and the path its results carry

_worker: LintSession | None = None


def start_method() -> str:
    if sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def lint_parallel(
    session: LintSession, jobs: Sequence[Job], workers: int, method: str | None = None
) -> list[FileOutcome]:
    """Lint `jobs` in `workers` processes; results in the order of `jobs`."""
    pool = open_pool(session, workers, method)
    try:
        return list(pool.map(_lint, jobs))
    finally:
        pool.shutdown(cancel_futures=True)


def open_pool(
    session: LintSession, workers: int, method: str | None = None, prepare: Callable[[], None] | None = None
) -> ProcessPoolExecutor:
    """Worker processes, each with `session` (inherited or rebuilt), `prepare` run first.

    Shutting the pool down waits for its processes to exit."""
    method = method or start_method()
    context = multiprocessing.get_context(method)
    initializer: Callable[[], None]
    if method == "fork":
        session.warm_up()
        initializer = functools.partial(_adopt, session, prepare)  # not pickled: the child inherits it
    else:
        if method == "forkserver":
            context.set_forkserver_preload([__name__])
        initializer = functools.partial(_start, session.settings, session.loaded, prepare)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=initializer)


def worker_session() -> LintSession:
    """The session of this worker process."""
    assert _worker is not None, "the pool initializer did not run in this process"
    return _worker


def _adopt(session: LintSession, prepare: Callable[[], None] | None) -> None:
    global _worker
    _ignore_interrupts()
    if prepare is not None:
        prepare()
    _worker = session


def _start(
    settings: LintSettings, loaded: Mapping[Path, dict[str, Any]], prepare: Callable[[], None] | None
) -> None:
    global _worker
    _ignore_interrupts()
    if prepare is not None:
        prepare()
    _worker = LintSession(settings, loaded)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent cancels the pool and reports.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _lint(job: Job) -> FileOutcome:
    return worker_session().lint_file(*job)
