"""lint(): which files are linted, what a violation carries, and problems in a file stay
with that file."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import ProjectError
from releasekit.lint import FileLint, LintRun, SkippedFile, Violation, lint
from tests.support.lint_project import MakeProject, codes

CP01_ONLY = {".sqlfluff": "[sqlfluff]\nrules = CP01\n"}  # consistent keyword case


def test_a_violation_carries_file_line_column_code_and_message(make_project: MakeProject) -> None:
    project = make_project({**CP01_ONLY, "models/orders.sql": "select 1 as id\nFROM t\n"})

    run = lint(project, ["models/orders.sql"], dialect="duckdb")

    assert run == LintRun(
        files=(FileLint("models/orders.sql", run.files[0].violations, run.files[0].seconds),),
        skipped=(),
        seconds=run.seconds,
        processes=1,
        dialect="duckdb",
        templater="jinja",
    )
    assert run.violations == (
        Violation("models/orders.sql", 2, 1, "CP01", "Keywords must be consistently lower case."),
    )
    assert not run.passed and not run.files[0].passed


def test_only_the_files_passed_are_linted(make_project: MakeProject) -> None:
    project = make_project({**CP01_ONLY, "models/orders.sql": "SELECT 1 from t\n"})

    run = lint(project, ["models/revenue.sql"], dialect="duckdb")

    assert [f.path for f in run.files] == ["models/revenue.sql"]
    assert run.passed


def test_files_may_be_absolute_or_relative_and_are_linted_once(make_project: MakeProject) -> None:
    project = make_project(CP01_ONLY)

    files: list[Path | str] = [
        project / "models/orders.sql",
        "models/orders.sql",
        "models/../models/revenue.sql",
    ]
    run = lint(project, files, dialect="duckdb")

    assert [f.path for f in run.files] == ["models/orders.sql", "models/revenue.sql"]


def test_paths_can_be_relative_to_the_repository(make_project: MakeProject, tmp_path: Path) -> None:
    project = make_project({**CP01_ONLY, "models/orders.sql": "SELECT 1 from t\n"}, subdir="transform/dbt")

    run = lint(project, ["models/orders.sql"], dialect="duckdb", relative_to=tmp_path / "repo")

    assert run.files[0].path == "transform/dbt/models/orders.sql"
    assert run.violations[0].path == "transform/dbt/models/orders.sql"


def test_missing_and_non_sql_files_are_skipped_with_the_reason(make_project: MakeProject) -> None:
    project = make_project()

    run = lint(project, ["models/schema.yml", "models/deleted.sql", "models/orders.sql"], dialect="duckdb")

    assert [f.path for f in run.files] == ["models/orders.sql"]
    assert [s.path for s in run.skipped] == ["models/schema.yml", "models/deleted.sql"]
    assert "not a SQL file" in run.skipped[0].reason
    assert run.skipped[1] == SkippedFile("models/deleted.sql", "no such file (deleted?)")


def test_files_over_sqlfluffs_size_limit_are_skipped(make_project: MakeProject) -> None:
    project = make_project({".sqlfluff": "[sqlfluff]\nlarge_file_skip_byte_limit = 40\n"})

    run = lint(project, ["models/orders.sql", "models/stg_customers.sql"], dialect="duckdb")

    assert [f.path for f in run.files] == []
    assert run.skipped[0] == SkippedFile(
        "models/orders.sql", "larger than sqlfluff's large_file_skip_byte_limit (40 bytes)"
    )


def test_a_file_outside_the_results_root_keeps_its_absolute_path(make_project: MakeProject) -> None:
    project = make_project()

    run = lint(project, ["models/orders.sql"], dialect="duckdb", relative_to=project / "models" / "sub")

    assert run.files[0].path == (project / "models" / "orders.sql").as_posix()


def test_nothing_to_lint_is_an_empty_run(make_project: MakeProject) -> None:
    run = lint(make_project(), [], dialect="duckdb")

    assert run.files == () and run.skipped == () and run.passed


def test_a_template_error_is_reported_for_that_file_only(make_project: MakeProject) -> None:
    project = make_project({"models/broken.sql": "select {{ ref('orders' }} from t\n"})

    run = lint(project, ["models/broken.sql", "models/revenue.sql"], dialect="duckdb")

    broken, fine = run.files
    assert broken.error is None and codes(broken) == ["TMP"]
    assert broken.violations[0].is_syntax and broken.violations[0].line == 1
    assert not [v for v in fine.violations if v.is_syntax]


def test_a_parse_error_is_reported_with_its_position(make_project: MakeProject) -> None:
    project = make_project({"models/broken.sql": "select 1 as id\nfrom from t\n"})

    run = lint(project, ["models/broken.sql"], dialect="duckdb")

    parse_errors = [v for v in run.violations if v.code == "PRS"]
    assert parse_errors and parse_errors[0].line == 2
    assert not run.passed


def test_a_file_sqlfluff_cannot_read_is_an_error_not_a_crash(make_project: MakeProject) -> None:
    project = make_project({".sqlfluff": "[sqlfluff]\nencoding = no-such-codec\n"})

    run = lint(project, ["models/orders.sql"], dialect="duckdb")

    assert run.files[0].error is not None and "no-such-codec" in run.files[0].error
    assert not run.passed


def test_noqa_comments_are_honoured_and_warnings_flagged(make_project: MakeProject) -> None:
    project = make_project(
        {
            ".sqlfluff": "[sqlfluff]\nrules = CP01\nwarnings = CP01\n",
            "models/orders.sql": "select 1 as id\nFROM t\n",
            "models/revenue.sql": "select 1 as id\nFROM t  -- noqa: CP01\n",
        }
    )

    run = lint(project, ["models/orders.sql", "models/revenue.sql"], dialect="duckdb")

    assert [v.warning for v in run.files[0].violations] == [True]
    assert run.files[1].violations == ()
    assert run.passed  # warnings alone do not fail a file


def test_a_folder_without_dbt_project_yml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"no dbt_project\.yml"):
        lint(tmp_path, [], dialect="duckdb")


def test_processes_below_one_is_a_programming_error(make_project: MakeProject) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        lint(make_project(), [], dialect="duckdb", processes=0)
