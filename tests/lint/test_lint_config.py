"""lint() honours the project's own sqlfluff config, wherever sqlfluff would find it, and
turns a config it cannot use into a ConfigError naming the file and the fix."""

from __future__ import annotations

import sys

import pytest

from releasekit.errors import ConfigError
from releasekit.lint import dialect_for_adapter, lint
from tests.support.lint_project import MakeProject, codes

# Parses in DuckDB, not in PostgreSQL: which dialect was used shows in the result.
DUCKDB_ONLY = "select * exclude (amount) from {{ ref('stg_orders') }}\n"
SHOUTY = "SELECT 1 AS id from t\n"  # CP01 (keyword case) is its only problem


def test_the_callers_dialect_applies_when_the_project_names_none(make_project: MakeProject) -> None:
    project = make_project({"models/orders.sql": DUCKDB_ONLY})

    assert "PRS" not in codes(lint(project, ["models/orders.sql"], dialect="duckdb"))
    assert "PRS" in codes(lint(project, ["models/orders.sql"], dialect="postgres"))


def test_the_projects_dialect_wins_over_the_callers(make_project: MakeProject) -> None:
    project = make_project(
        {".sqlfluff": "[sqlfluff]\ndialect = postgres\n", "models/orders.sql": DUCKDB_ONLY}
    )

    run = lint(project, ["models/orders.sql"], dialect="duckdb")

    assert run.dialect == "postgres"
    assert "PRS" in codes(run)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (".sqlfluff", "[sqlfluff]\nrules = CP01\n"),
        ("pyproject.toml", '[tool.sqlfluff.core]\nrules = "CP01"\n'),
        ("setup.cfg", "[sqlfluff]\nrules = CP01\n"),
        ("tox.ini", "[sqlfluff]\nrules = CP01\n"),
    ],
)
def test_every_config_file_sqlfluff_reads_is_honoured(
    make_project: MakeProject, name: str, text: str
) -> None:
    trailing_space = "SELECT 1 AS id from t   \n"  # CP01, and LT01 unless rules say otherwise
    project = make_project({name: text, "models/orders.sql": trailing_space})

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb")) == ["CP01"]


def test_without_config_sqlfluffs_default_rules_apply(make_project: MakeProject) -> None:
    project = make_project({"models/orders.sql": "SELECT 1 AS id from t   \n"})

    assert set(codes(lint(project, ["models/orders.sql"], dialect="duckdb"))) == {"CP01", "LT01"}


def test_config_above_the_dbt_project_applies(make_project: MakeProject) -> None:
    project = make_project(
        {"models/orders.sql": "select 1 AS id from t\n"}, around={".sqlfluff": "[sqlfluff]\nrules = CP01\n"}
    )

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb")) == ["CP01"]


def test_nearer_config_wins_for_the_files_below_it(make_project: MakeProject) -> None:
    project = make_project(
        {
            ".sqlfluff": "[sqlfluff]\nrules = CP01\n",
            "models/staging/.sqlfluff": "[sqlfluff]\nexclude_rules = CP01\n",
            "models/staging/stg.sql": SHOUTY,
            "models/orders.sql": SHOUTY,
        }
    )

    run = lint(project, ["models/staging/stg.sql", "models/orders.sql"], dialect="duckdb")

    assert [codes(f) for f in run.files] == [[], ["CP01"]]


def test_sqlfluffignore_excludes_a_changed_file(make_project: MakeProject) -> None:
    project = make_project({".sqlfluffignore": "models/legacy/\n", "models/legacy/old.sql": SHOUTY})

    run = lint(project, ["models/legacy/old.sql", "models/orders.sql"], dialect="duckdb")

    assert [f.path for f in run.files] == ["models/orders.sql"]
    assert run.skipped[0].path == "models/legacy/old.sql"
    assert ".sqlfluffignore" in run.skipped[0].reason


def test_no_dialect_anywhere_is_a_config_error(make_project: MakeProject) -> None:
    with pytest.raises(ConfigError, match="no SQL dialect") as raised:
        lint(make_project(), ["models/orders.sql"])
    assert "dialect = " in str(raised.value.hint)


def test_an_unknown_dialect_names_the_file_key_and_choices(make_project: MakeProject) -> None:
    project = make_project({".sqlfluff": "[sqlfluff]\ndialect = duckdbb\n"})

    with pytest.raises(ConfigError, match="unknown sqlfluff dialect 'duckdbb'") as raised:
        lint(project, ["models/orders.sql"], dialect="duckdb")
    assert raised.value.file == str(project / ".sqlfluff")
    assert raised.value.key == "[sqlfluff] dialect"
    assert "duckdb" in str(raised.value.hint) and "postgres" in str(raised.value.hint)


@pytest.mark.parametrize(
    ("name", "text"),
    [(".sqlfluff", "rules = CP01\n[[[\n"), ("pyproject.toml", "[tool.sqlfluff.core\nrules = 1\n")],
)
def test_an_unparseable_config_file_is_named(make_project: MakeProject, name: str, text: str) -> None:
    project = make_project({name: text})

    with pytest.raises(ConfigError, match="sqlfluff cannot read its config") as raised:
        lint(project, ["models/orders.sql"], dialect="duckdb")
    assert raised.value.file == str(project / name)
    assert raised.value.hint


def test_the_dbt_templater_without_its_plugin_says_how_to_install_it(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dev install has the plugin: a None entry in sys.modules makes it unimportable.
    monkeypatch.setitem(sys.modules, "sqlfluff_templater_dbt", None)
    project = make_project({".sqlfluff": "[sqlfluff]\ntemplater = dbt\n"})

    with pytest.raises(ConfigError, match="dbt templater") as raised:
        lint(project, ["models/orders.sql"], dialect="duckdb")
    assert raised.value.file == str(project / ".sqlfluff")
    assert "pip install 'releasekit[lint-dbt]'" in str(raised.value.hint)


def test_an_unknown_templater_names_the_file_setting_it(make_project: MakeProject) -> None:
    project = make_project(
        {"models/.sqlfluff": "[sqlfluff]\nrules = CP01\n"},
        around={".sqlfluff": "[sqlfluff]\ntemplater = jinja3\n"},
    )

    with pytest.raises(ConfigError, match="jinja3") as raised:
        lint(project, ["models/orders.sql"], dialect="duckdb")
    assert raised.value.file == str(project.parent / ".sqlfluff")
    assert raised.value.key == "[sqlfluff] templater"


def test_a_bad_config_in_a_subfolder_is_found_before_linting(make_project: MakeProject) -> None:
    project = make_project(
        {"models/staging/.sqlfluff": "[sqlfluff]\ndialect = nope\n", "models/staging/a.sql": SHOUTY}
    )

    with pytest.raises(ConfigError) as raised:
        lint(project, ["models/orders.sql", "models/staging/a.sql"], dialect="duckdb")
    assert raised.value.file == str(project / "models/staging/.sqlfluff")


def test_an_unknown_dialect_from_the_caller_says_where_to_set_one(make_project: MakeProject) -> None:
    with pytest.raises(ConfigError, match="no dialect 'spark'") as raised:
        lint(make_project(), ["models/orders.sql"], dialect="spark")
    assert raised.value.file is None
    assert "under [sqlfluff] in the dbt project's .sqlfluff" in str(raised.value.hint)
    assert "sparksql" in str(raised.value.hint)


def test_dbt_adapter_types_map_to_sqlfluff_dialects() -> None:
    assert [dialect_for_adapter(a) for a in ("duckdb", "postgres", "spark", "sqlserver")] == [
        "duckdb",
        "postgres",
        "sparksql",
        "tsql",
    ]
