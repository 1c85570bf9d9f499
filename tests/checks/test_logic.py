"""Logic tests: discovery from files, and runs against real DuckDB and PostgreSQL
environments (physical tables, consumer views switched by the adapter)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg2
import pytest

from releasekit.checks.logic import LOGIC_TESTS_DIR, LogicTest, discover, run
from releasekit.errors import ProjectError
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.registry import connect
from tests.support.postgres import fresh_database
from tests.support.warehouse import (
    Backend,
    RunSQL,
    duckdb_connection,
    make_marker,
    postgres_connection,
    postgres_dsn,
    run_sql,
)

PHYSICAL = "rk__physical"
ORPHANS = """\
-- severity: warn
-- description: every order has a customer
select o.order_id, o.customer_id
from {{ ref('orders') }} o left join {{ ref('customers') }} c on c.customer_id = o.customer_id
where c.customer_id is null
order by o.order_id
"""


def _project(root: Path, files: dict[str, str], dbt_project: str = "name: shop\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(dbt_project)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _test(name: str, sql: str) -> LogicTest:
    return LogicTest(name=name, path=Path(f"{LOGIC_TESTS_DIR}/{name}.sql"), sql=sql)


# --- discover ---------------------------------------------------------------------------


def test_discover_reads_the_header(tmp_path: Path) -> None:
    project = _project(tmp_path, {"logic_tests/orphans.sql": ORPHANS, "logic_tests/plain.sql": "select 1\n"})

    orphans, plain = discover(project)

    assert (orphans.name, orphans.severity, orphans.description) == (
        "orphans",
        "warn",
        "every order has a customer",
    )
    assert orphans.path == project / "logic_tests" / "orphans.sql" and orphans.sql == ORPHANS
    assert (plain.name, plain.severity, plain.description) == ("plain", "error", "")


def test_discover_walks_subfolders_in_path_order(tmp_path: Path) -> None:
    files = {f"logic_tests/{path}": "select 1\n" for path in ["b.sql", "a/z.sql", "a/y.sql", "notes.md"]}

    tests = discover(_project(tmp_path, files))

    assert [test.name for test in tests] == ["y", "z", "b"]


def test_discover_without_the_folder_finds_none(tmp_path: Path) -> None:
    assert discover(_project(tmp_path, {"models/orders.sql": "select 1\n"})) == []


def test_free_comments_and_comments_in_the_sql_are_not_metadata(tmp_path: Path) -> None:
    text = "-- Every order must have a customer.\n\n-- description: d\nselect 1\n-- severity: nonsense\n"

    [test] = discover(_project(tmp_path, {"logic_tests/t.sql": text}))

    assert (test.severity, test.description) == ("error", "d")


@pytest.mark.parametrize(
    ("header", "line", "problem"),
    [
        ("-- severty: warn\n", 1, "unknown key 'severty'"),
        ("-- description: x\n-- severity: fatal\n", 2, "severity must be error or warn"),
        ("-- severity: warn\n\n-- severity: error\n", 3, "set again (first on line 1)"),
        ("-- description:\n", 1, "has no value"),
    ],
)
def test_a_bad_header_names_file_and_line(tmp_path: Path, header: str, line: int, problem: str) -> None:
    project = _project(tmp_path, {"logic_tests/bad.sql": header + "select 1\n"})

    with pytest.raises(ProjectError) as raised:
        discover(project)

    assert f"{project / 'logic_tests' / 'bad.sql'}:{line}: " in str(raised.value)
    assert problem in str(raised.value)


def test_two_tests_with_one_name_are_refused(tmp_path: Path) -> None:
    files = {"logic_tests/a/orders.sql": "select 1\n", "logic_tests/b/orders.sql": "select 1\n"}

    with pytest.raises(ProjectError, match="two logic tests are named 'orders'"):
        discover(_project(tmp_path, files))


@pytest.mark.parametrize(
    ("dbt_project", "folder"),
    [
        ('name: shop\ntest-paths: ["logic_tests"]\n', LOGIC_TESTS_DIR),
        ('name: shop\nmodel-paths: ["models", "logic_tests/models"]\n', LOGIC_TESTS_DIR),
        ("name: shop\n", "tests/logic"),  # dbt's default test-paths would run them as data tests
    ],
)
def test_a_folder_dbt_also_parses_is_refused(tmp_path: Path, dbt_project: str, folder: str) -> None:
    project = _project(tmp_path, {f"{folder}/t.sql": "select 1\n"}, dbt_project)

    with pytest.raises(ProjectError, match="overlaps the logic tests folder"):
        discover(project, folder=folder)


# --- run, on both warehouses ------------------------------------------------------------


def _duckdb_backend(tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "warehouse.duckdb"
    warehouse = connect(duckdb_connection(path))
    side = duckdb.connect(str(path))  # same process, same file: one shared database
    try:
        yield Backend(warehouse, lambda sql: side.execute(sql).fetchall())
    finally:
        side.close()
        warehouse.close()


def _postgres_backend() -> Iterator[Backend]:
    with fresh_database() as database:
        warehouse = connect(postgres_connection(database))
        side = psycopg2.connect(**postgres_dsn(database))
        side.autocommit = True
        try:
            yield Backend(warehouse, functools.partial(run_sql, side))
        finally:
            side.close()
            warehouse.close()


def _table(sql: RunSQL, name: str, columns: str, rows: str) -> None:
    sql(f"CREATE TABLE {qualify(PHYSICAL, name)} ({columns})")
    sql(f"INSERT INTO {qualify(PHYSICAL, name)} VALUES {rows}")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _duckdb_backend(tmp_path) if request.param == "duckdb" else _postgres_backend()


@pytest.fixture
def shop(backend: Backend) -> Backend:
    """Environment `dev` serves orders with two orphans (customer 3 and NULL); `prod` none."""
    sql, orders = backend.sql, "order_id INTEGER, customer_id INTEGER, status VARCHAR(10)"
    sql(f"CREATE SCHEMA {qualify(PHYSICAL)}")
    _table(sql, "customers__r1", "customer_id INTEGER", "(1), (2)")
    _table(sql, "orders__r1", orders, "(10, 1, 'new'), (11, 3, 'it''s'), (12, NULL, NULL), (13, 2, 'new')")
    _table(sql, "orders__r2", orders, "(10, 1, 'new'), (13, 2, 'paid')")
    for release, env, relation in [(1, "dev", "orders__r1"), (2, "prod", "orders__r2")]:
        views = {"orders": relation, "customers": "customers__r1"}
        backend.warehouse.switch(env, views, physical_schema=PHYSICAL, marker=make_marker(release, env))
    return backend


MODELS = ("orders", "customers")


def test_a_test_fails_in_one_environment_and_passes_in_another(shop: Backend) -> None:
    test = _test("orphans", ORPHANS)

    [dev] = run([test], shop.warehouse, "dev", MODELS)
    [prod] = run([test], shop.warehouse, "prod", MODELS)

    assert not dev.passed and dev.error is None and dev.violations == 2
    assert dev.examples == ("order_id=11, customer_id=3", "order_id=12, customer_id=NULL")
    assert qualify("dev", "orders") in dev.sql
    assert prod.passed and prod.violations == 0 and prod.examples == ()


def test_limit_keeps_a_few_examples_and_counts_all(shop: Backend) -> None:
    test = _test("all_orders", "select order_id, status from {{ ref('orders') }} order by order_id;\n")

    [outcome] = run([test], shop.warehouse, "dev", MODELS, limit=1)

    assert (outcome.violations, outcome.examples) == (4, ("order_id=10, status='new'",))


def test_examples_quote_text_values(shop: Backend) -> None:
    test = _test("odd", "select status from {{ ref('orders') }} where order_id = 11")

    [outcome] = run([test], shop.warehouse, "dev", MODELS)

    assert outcome.examples == ("status='it''s'",)


def test_an_unknown_model_fails_that_test_alone(shop: Backend) -> None:
    tests = [_test("typo", "select * from {{ ref('order') }}"), _test("fine", "select 1 as x where false")]

    typo, fine = run(tests, shop.warehouse, "dev", MODELS)

    assert typo.error is not None and not typo.passed
    assert "no model 'order'" in typo.error and "did you mean 'orders'" in typo.error
    assert str(typo.test.path) in typo.error and typo.sql == ""
    assert fine.passed


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select 1\nfrom {{ ref('orders' }}", "typo.sql:2: "),
        ("select {{ var('x') }}", "'var' is undefined"),
        ("select * from {{ ref('a', 'b', 'c') }}", "write ref('model') or ref('package', 'model')"),
        ("select * from {{ ref('orders', v=2) }}", "write ref('model')"),
        ("select '{{ ref.__globals__ }}'", "unsafe"),
    ],
)
def test_template_errors_fail_that_test(shop: Backend, sql: str, message: str) -> None:
    [outcome] = run([_test("typo", sql)], shop.warehouse, "dev", MODELS)

    assert outcome.error is not None and message in outcome.error


def test_a_package_qualified_ref_reads_the_model(shop: Backend) -> None:
    test = _test("pkg", "select * from {{ ref('shop', 'customers') }} where customer_id > 5")

    [outcome] = run([test], shop.warehouse, "dev", MODELS)

    assert outcome.passed


def test_an_sql_error_carries_the_database_message(shop: Backend) -> None:
    test = _test("broken", "select no_such_column from {{ ref('orders') }}")

    [outcome] = run([test], shop.warehouse, "dev", MODELS)

    assert outcome.error is not None and "no_such_column" in outcome.error
    assert qualify("dev", "orders") in outcome.sql


@pytest.mark.parametrize(
    "sql",
    [
        "delete from {{ ref('orders') }}",
        "create table {{ ref('orders') }}_copy as select 1 as x",
        "select 1; drop view {{ ref('orders') }}",
        "insert into {{ ref('customers') }} values (99)",
    ],
)
def test_a_logic_test_cannot_write(shop: Backend, sql: str) -> None:
    [outcome] = run([_test("writes", sql)], shop.warehouse, "dev", MODELS)

    assert outcome.error is not None and not outcome.passed
    assert shop.warehouse.relations("dev") == {"orders", "customers", "_releasekit_release"}
    assert shop.sql(f"SELECT count(*) FROM {qualify('dev', 'orders')}") == [(4,)]
    assert shop.sql(f"SELECT count(*) FROM {qualify(PHYSICAL, 'customers__r1')}") == [(2,)]


def test_seconds_come_from_the_clock(shop: Backend) -> None:
    ticks = iter([1.0, 3.5, 10.0, 10.25])
    tests = [_test("one", "select 1 as x where false"), _test("two", "select * from {{ ref('nope') }}")]

    outcomes = run(tests, shop.warehouse, "dev", MODELS, clock=lambda: next(ticks))

    assert [outcome.seconds for outcome in outcomes] == [2.5, 0.25]


def test_discovered_tests_run_end_to_end(shop: Backend, tmp_path: Path) -> None:
    project = _project(tmp_path / "project", {"logic_tests/orphans.sql": ORPHANS})

    [outcome] = run(discover(project), shop.warehouse, "dev", MODELS)

    assert outcome.test.severity == "warn" and outcome.violations == 2
