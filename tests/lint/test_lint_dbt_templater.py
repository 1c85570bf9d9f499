"""lint() with sqlfluff's dbt templater (`templater = dbt`): real dbt compiles the shop
project on DuckDB, in a child process that leaves nothing open behind it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from releasekit.errors import ProjectError
from releasekit.lint import FileLint, LintRun, SkippedFile, Violation, lint
from releasekit.lint.configuration import DbtOptions, LintSettings
from releasekit.lint.isolation import lint_isolated
from releasekit.lint.project import read_dbt_project
from releasekit.lint.session import LintSession
from tests.support.lint_project import MakeProject, codes
from tests.support.projects import BASE_FILES, PROFILE, write_files

pytestmark = pytest.mark.integration

DBT_CONFIG = {
    ".sqlfluff": (
        "[sqlfluff]\ntemplater = dbt\nrules = CP01,LT01\n\n[sqlfluff:templater:dbt]\nproject_dir = .\n"
    )
}
# The macro spreads over four lines when compiled: what follows it moves down.
COLUMNS_MACRO = {
    "macros/columns.sql": (
        "{% macro order_columns() %}\n    id,\n    customer_id,\n    amount\n{% endmacro %}\n"
    )
}
WIDE_MODEL = (
    "{{ config(materialized='table') }}\n"
    "select\n"
    "    {{ order_columns() }}\n"
    "from {{ ref('stg_orders') }}\n"
    "WHERE amount > 0\n"  # CP01: the other keywords are lower case
)
TWO_TARGETS = PROFILE.replace("path: warehouse.duckdb", "path: dev.duckdb") + (
    "    ci:\n      type: duckdb\n      path: ci.duckdb\n      threads: 1\n"
)


FILES = {
    **DBT_CONFIG,
    **COLUMNS_MACRO,
    "profiles.yml": "not: [a profile",  # lint must read the profiles folder passed in instead
    "models/wide.sql": WIDE_MODEL,
    "models/by_var.sql": "select {{ var('expr') }} as x from {{ ref('stg_orders') }}\n",
    "models/by_env.sql": "select {{ env_var('RK_EXPR') }} as x from {{ ref('stg_orders') }}\n",
}
LINTED = [
    "models/orders.sql",  # renders dbt_project.yml's var min_amount, and the project macro cents()
    "models/big_spenders.sql",
    "models/wide.sql",
    "models/by_var.sql",
    "models/by_env.sql",
    "macros/money.sql",
]


@dataclass(frozen=True)
class Linted:
    project: Path
    run: LintRun

    def file(self, path: str) -> FileLint:
        return next(f for f in self.run.files if f.path == path)


@pytest.fixture(scope="module")
def linted(tmp_path_factory: pytest.TempPathFactory) -> Linted:
    """One dbt-templated run over the shop project (dbt compiles it once: seconds), from a
    folder that is not the project's, with its own profiles folder, target, vars and environ."""
    root = tmp_path_factory.mktemp("dbt_templater")
    project = root / "repo" / "dbt"
    write_files(project, {**BASE_FILES, **FILES})
    write_files(root / "profiles", {"profiles.yml": TWO_TARGETS})
    home = root / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # a relative DuckDB path must still resolve against the dbt project
        patch.setenv("HOME", str(home))  # no user sqlfluff config
        patch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        run = lint(
            project,
            LINTED,
            dialect="duckdb",
            dbt_vars={"expr": "1 +"},
            environ={**os.environ, "RK_EXPR": "2"},
            profiles_dir=root / "profiles",
            target="ci",
        )
    return Linted(project, run)


def test_clean_models_pass(linted: Linted) -> None:
    assert (linted.run.templater, linted.run.processes) == ("dbt", 1)
    for path in ("models/orders.sql", "models/big_spenders.sql"):
        assert linted.file(path) == FileLint(path, (), linted.file(path).seconds)


def test_a_violation_is_placed_in_the_models_source(linted: Linted) -> None:
    assert linted.file("models/wide.sql").violations == (
        Violation("models/wide.sql", 5, 1, "CP01", "Keywords must be consistently lower case."),
    )


def test_var_and_env_var_render_the_values_passed_in(linted: Linted) -> None:
    # Without a value dbt would refuse the model; "1 +" makes SQL that does not parse.
    assert codes(linted.file("models/by_var.sql")) == ["PRS"]
    assert codes(linted.file("models/by_env.sql")) == []


def test_macros_are_skipped_with_the_reason(linted: Linted) -> None:
    assert linted.run.skipped == (
        SkippedFile("macros/money.sql", "sqlfluff's dbt templater skipped it: it is a macro"),
    )
    assert [f.path for f in linted.run.files] == LINTED[:-1]


def test_the_profiles_dir_and_target_passed_in_are_used(linted: Linted) -> None:
    assert (linted.project / "ci.duckdb").is_file()
    assert not (linted.project / "dev.duckdb").exists()


def test_the_database_is_left_unlocked(linted: Linted) -> None:
    probe = f"import duckdb; duckdb.connect({str(linted.project / 'ci.duckdb')!r}).close()"
    opened = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert opened.returncode == 0, opened.stderr


def test_a_project_dbt_cannot_load_is_a_project_error(make_project: MakeProject) -> None:
    project = make_project(DBT_CONFIG)

    with pytest.raises(ProjectError, match="does not have a target named 'nope'") as raised:
        lint(project, ["models/orders.sql"], dialect="duckdb", target="nope")
    assert raised.value.hint == f"run `dbt debug --project-dir {project.resolve()} --target nope` to see why"


def test_a_child_that_is_not_forked_lints_the_same(make_project: MakeProject, tmp_path: Path) -> None:
    """Where this process runs other threads the child is spawned (or comes from the fork
    server): it rebuilds its session from the settings, and still runs in the project."""
    project = make_project({**DBT_CONFIG, **COLUMNS_MACRO, "models/wide.sql": WIDE_MODEL})
    dbt_project = read_dbt_project(project)
    settings = LintSettings(dbt_project, "duckdb", dbt_project.vars, dict(os.environ), DbtOptions())
    session = LintSession(settings)
    session.config_for(project / "models")

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        [wide] = lint_isolated(session, [(project / "models/wide.sql", "models/wide.sql")], method="spawn")

    assert isinstance(wide, FileLint)
    assert [(v.line, v.column, v.code) for v in wide.violations] == [(5, 1, "CP01")]
    assert (project / "warehouse.duckdb").is_file()
