"""lint() in worker processes finds exactly what a serial run finds, in the caller's order."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import Sequence

import pytest

from releasekit.lint import FileLint, lint
from releasekit.lint.configuration import LintSettings
from releasekit.lint.linter import PARALLEL_FROM
from releasekit.lint.pool import lint_parallel, start_method
from releasekit.lint.project import read_dbt_project
from releasekit.lint.results import FileOutcome
from releasekit.lint.session import LintSession
from tests.support.lint_project import MakeProject

FILES = {
    ".sqlfluff": "[sqlfluff]\nrules = CP01,LT01\n",
    "models/a.sql": "SELECT 1 as id from t\n",
    "models/b.sql": "select {{ var('expr') }} as x from t\n",  # PRS when expr is '1 +'
    "models/c.sql": "select {{ env_var('RK_COL') }} as x from t  \n",
    "models/d.sql": "select {{ ref('orders' }}\n",  # a templating error
    "models/staging/e.sql": "select 1 AS x from t\n",
    "models/staging/.sqlfluff": "[sqlfluff]\nexclude_rules = CP01\n",
}
NAMES = ["models/d.sql", "models/a.sql", "models/b.sql", "models/c.sql", "models/staging/e.sql"]


def without_timing(files: Sequence[FileOutcome]) -> list[FileOutcome]:
    return [dataclasses.replace(f, seconds=0.0) if isinstance(f, FileLint) else f for f in files]


def test_workers_find_what_a_serial_run_finds(make_project: MakeProject) -> None:
    project = make_project(FILES)
    serial, parallel = (
        lint(project, NAMES, dialect="duckdb", dbt_vars={"expr": "1 +"}, environ={"RK_COL": "a"}, processes=n)
        for n in (1, 2)
    )

    assert (serial.processes, parallel.processes) == (1, 2)
    assert without_timing(parallel.files) == without_timing(serial.files)
    assert [f.path for f in parallel.files] == NAMES
    assert [sorted({v.code for v in f.violations}) for f in parallel.files] == [
        ["TMP"],
        ["CP01"],
        ["PRS"],
        ["LT01"],
        [],
    ]


def test_few_files_are_linted_in_this_process(make_project: MakeProject) -> None:
    project = make_project(FILES)

    assert lint(project, ["models/a.sql"], dialect="duckdb", processes=4).processes == 1
    assert lint(project, NAMES[: PARALLEL_FROM[start_method()] - 1], dialect="duckdb").processes == 1


def test_workers_never_outnumber_the_files(make_project: MakeProject) -> None:
    project = make_project(FILES)

    assert lint(project, NAMES[:2], dialect="duckdb", processes=8).processes == 2


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_every_start_method_finds_the_same(make_project: MakeProject, method: str) -> None:
    """Forked workers inherit this process's session; the others build theirs from the
    settings and the config files this process read."""
    project = make_project(FILES)
    settings = LintSettings(read_dbt_project(project), "duckdb", {"expr": "1 +"}, {"RK_COL": "a"})
    session = LintSession(settings)
    for folder in (project / "models", project / "models/staging"):
        session.config_for(folder)
    jobs = [(project / name, name) for name in NAMES[1:]]

    serial = [session.lint_file(*job) for job in jobs]
    parallel = lint_parallel(session, jobs, 2, method=method)

    assert without_timing(tuple(parallel)) == without_timing(tuple(serial))


def test_workers_are_forked_only_from_a_single_threaded_process() -> None:
    fresh = subprocess.run(
        [sys.executable, "-c", "from releasekit.lint.pool import start_method; print(start_method())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert fresh.stdout.strip() == ("fork" if sys.platform == "linux" else "forkserver")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert start_method() == "forkserver"
    finally:
        stop.set()
        other.join()
