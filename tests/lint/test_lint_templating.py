"""lint() renders models as dbt would for the environment: its vars, env vars, the
project's macros and dbt's builtins. A var's value shows by whether the SQL it makes parses."""

from __future__ import annotations

import copy
import pickle

from releasekit.lint import lint
from releasekit.lint.context import DbtEnvVar, DbtVar
from releasekit.lint.project import project_vars
from tests.support.lint_project import MakeProject, codes

LT01_ONLY = {".sqlfluff": "[sqlfluff]\nrules = LT01\n"}  # parse errors always show, as PRS
VAR_MODEL = {"models/orders.sql": "select {{ var('expr') }} as x from t\n"}
PROJECT_WITH_VAR = 'name: shop\nversion: "1.0"\nprofile: shop\nvars:\n  expr: "1 +"\n'


def test_the_environments_vars_are_rendered(make_project: MakeProject) -> None:
    project = make_project({**LT01_ONLY, **VAR_MODEL})

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb", dbt_vars={"expr": "1"})) == []
    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb", dbt_vars={"expr": "1 +"})) == ["PRS"]


def test_dbt_project_vars_apply_under_the_callers(make_project: MakeProject) -> None:
    project = make_project({**LT01_ONLY, **VAR_MODEL, "dbt_project.yml": PROJECT_WITH_VAR})

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb")) == ["PRS"]
    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb", dbt_vars={"expr": 2})) == []


def test_a_var_default_and_an_unknown_var_render(make_project: MakeProject) -> None:
    project = make_project(
        {
            **LT01_ONLY,
            "models/orders.sql": "select {{ var('a', 3) }} as x, {{ var('unknown') }} as y from t\n",
        }
    )

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb")) == []


def test_env_var_reads_the_given_environ(make_project: MakeProject) -> None:
    project = make_project(
        {**LT01_ONLY, "models/orders.sql": "select {{ env_var('RK_EXPR') }} as x from t\n"}
    )

    run = lint(project, ["models/orders.sql"], dialect="duckdb", environ={"RK_EXPR": "1 +"})

    assert codes(run) == ["PRS"]


def test_a_message_quoting_an_env_var_value_is_redacted(make_project: MakeProject) -> None:
    """sqlfluff quotes an unparsable section of the rendered SQL; the value is hidden."""
    project = make_project(
        {**LT01_ONLY, "models/orders.sql": "select {{ env_var('RK_SECRET') }} as x from t\n"}
    )

    run = lint(project, ["models/orders.sql"], dialect="duckdb", environ={"RK_SECRET": "!!hunter2"})

    messages = [v.message for f in run.files for v in f.violations]
    assert codes(run) == ["PRS"] and "hunter2" not in str(messages)
    assert "<redacted env_var RK_SECRET>" in str(messages)


def test_project_macros_render(make_project: MakeProject) -> None:
    # The shop's orders.sql calls the project macro cents(); big_spenders.sql calls threshold().
    project = make_project(LT01_ONLY)

    run = lint(project, ["models/orders.sql", "models/big_spenders.sql"], dialect="duckdb")

    assert [codes(f) for f in run.files] == [[], []]


def test_macros_come_from_the_projects_macro_paths(make_project: MakeProject) -> None:
    project = make_project(
        {
            **LT01_ONLY,
            "dbt_project.yml": 'name: shop\nprofile: shop\nmacro-paths: ["dbt_macros"]\n',
            "dbt_macros/broken.sql": "{% macro broken() %}1 +{% endmacro %}\n",
            "macros/money.sql": "{% macro broken() %}1{% endmacro %}\n",  # not a macro path now
            "models/orders.sql": "select {{ broken() }} as x from t\n",
        }
    )

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb")) == ["PRS"]


def test_an_undefined_macro_is_a_templating_violation(make_project: MakeProject) -> None:
    project = make_project({**LT01_ONLY, "models/orders.sql": "select {{ no_such_macro() }} as x from t\n"})

    run = lint(project, ["models/orders.sql"], dialect="duckdb")

    templating = [v for v in run.violations if v.code == "TMP"]
    assert templating and "no_such_macro" in templating[0].message


def test_dbt_builtins_render(make_project: MakeProject) -> None:
    model = (
        "{{ config(materialized='incremental', unique_key='id') }}\n"
        "select o.id from {{ ref('stg_orders') }} as o\n"
        "join {{ source('raw', 'customers') }} as c on o.customer_id = c.id\n"
        "{% if is_incremental() %}where o.id > (select max(id) from {{ this }}){% endif %}\n"
    )
    project = make_project({**LT01_ONLY, "models/orders.sql": model})

    assert codes(lint(project, ["models/orders.sql"], dialect="duckdb")) == []


def test_project_vars_take_the_projects_own_scope() -> None:
    raw = {"a": 1, "b": 1, "shop": {"b": 2}, "other_package": {"a": 3}}

    assert project_vars(raw, "shop") == {"a": 1, "b": 2, "other_package": {"a": 3}}
    assert project_vars(None, "shop") == {}


def test_var_and_env_var_fall_back_like_dbt() -> None:
    var, env_var = DbtVar({"x": [1, 2]}), DbtEnvVar({"HOME": "/h"})

    assert var("x") == [1, 2] and var("y", "d") == "d" and str(var("y")) == "item"
    assert str(var("y").attr) == "item" and str(var("y")["key"]) == "item" and var("y")[0] == "i"
    assert copy.deepcopy(var("y")) == "item" and pickle.loads(pickle.dumps(var)).values == {"x": [1, 2]}
    assert env_var("HOME") == "/h" and env_var("NOPE", "d") == "d" and str(env_var("NOPE")) == "item"
