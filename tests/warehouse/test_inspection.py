"""Read-only inspection, part of the adapter contract: columns, row counts, row comparison
and queries (parametrized over conftest.ADAPTER_TYPES like test_contract.py)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest

from releasekit.errors import NotFoundError, WarehouseError
from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.inspection import one_statement
from releasekit.warehouse.naming import qualify
from releasekit.warehouse.postgres import PostgresWarehouse
from releasekit.warehouse.registry import connect
from tests.support.warehouse import RunSQL, Schemas, postgres_connection, postgres_dsn

HOSTILE = 'col "x"; DROP TABLE t; --ü'


def _table(sql: RunSQL, schema: str, name: str, columns: str, rows: str = "") -> tuple[str, str]:
    """Create `schema.name` (columns as SQL) holding `rows` (a VALUES list, or none)."""
    sql(f"CREATE SCHEMA IF NOT EXISTS {qualify(schema)}")
    sql(f"CREATE TABLE {qualify(schema, name)} ({columns})")
    if rows:
        sql(f"INSERT INTO {qualify(schema, name)} VALUES {rows}")
    return schema, name


def _orders(sql: RunSQL, schema: str, name: str, rows: str) -> tuple[str, str]:
    return _table(sql, schema, name, "id INTEGER, status VARCHAR(20), amount DECIMAL(10, 2)", rows)


# --- columns and row_count ------------------------------------------------------------


def test_columns_in_order_with_types(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    _table(sql, schemas.env, "t", "z INTEGER, a BIGINT, m DATE, b BOOLEAN, amount DECIMAL(10, 2)")

    found = warehouse.columns(schemas.env, "t")

    assert [name for name, _ in found] == ["z", "a", "m", "b", "amount"]
    assert [kind.lower() for _, kind in found[:4]] == ["integer", "bigint", "date", "boolean"]
    assert "(10,2)" in found[4][1].replace(" ", "")  # precision and scale, as the warehouse spells them


def test_columns_of_a_view(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    _table(sql, schemas.env, "t", "a INTEGER, b INTEGER")
    view, table = qualify(schemas.env, "v"), qualify(schemas.env, "t")
    sql(f"CREATE VIEW {view} AS SELECT b, a, a + b AS total FROM {table}")

    assert [name for name, _ in warehouse.columns(schemas.env, "v")] == ["b", "a", "total"]


def test_columns_of_a_missing_relation_is_empty(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    _table(sql, schemas.env, "t", "a INTEGER")

    assert warehouse.columns(schemas.env, "nope") == []
    assert warehouse.columns("no_such_schema", "t") == []


def test_row_count_of_tables_and_views(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    _table(sql, schemas.env, "t", "a INTEGER", "(1), (2), (NULL)")
    _table(sql, schemas.env, "empty", "a INTEGER")
    sql(f"CREATE VIEW {qualify(schemas.env, 'v')} AS SELECT * FROM {qualify(schemas.env, 't')} WHERE a > 1")

    assert warehouse.row_count(schemas.env, "t") == 3
    assert warehouse.row_count(schemas.env, "empty") == 0
    assert warehouse.row_count(schemas.env, "v") == 1


def test_row_count_of_a_missing_relation_is_not_found(warehouse: Warehouse, schemas: Schemas) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        warehouse.row_count(schemas.env, "nope")


def test_hostile_names_in_columns_and_counts(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    schema, name = f"{schemas.env}_{HOSTILE}", f"t {HOSTILE}"
    _table(sql, schema, name, f"{qualify(HOSTILE)} INTEGER", "(1)")

    assert [column for column, _ in warehouse.columns(schema, name)] == [HOSTILE]
    assert warehouse.row_count(schema, name) == 1


# --- compare_rows -----------------------------------------------------------------------


def test_compare_counts_added_removed_and_changed(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas
) -> None:
    before = _orders(
        sql, schemas.env, "before", "(1, 'new', 10), (2, 'new', 20), (3, 'new', 30), (4, 'x', 1)"
    )
    after = _orders(sql, schemas.env, "after", "(1, 'new', 10), (2, 'paid', 20), (4, 'x', 2), (5, 'new', 50)")

    diff = warehouse.compare_rows(before, after, ["id"], ["id", "status", "amount"])

    assert (diff.added, diff.removed, diff.changed) == (1, 1, 2)
    assert (diff.added_examples, diff.removed_examples, diff.changed_examples) == (
        ((5,),),
        ((3,),),
        ((2,), (4,)),
    )
    assert diff.key == ("id",) and not diff.identical


def test_compare_treats_null_as_a_value(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    before = _orders(
        sql, schemas.env, "before", "(1, NULL, 10), (2, NULL, 20), (3, 'a', NULL), (NULL, 'k', 1)"
    )
    after = _orders(
        sql, schemas.env, "after", "(1, NULL, 10), (2, 'paid', 20), (3, NULL, NULL), (NULL, 'k', 1)"
    )

    diff = warehouse.compare_rows(before, after, ["id"], ["status", "amount"])

    # NULL = NULL is unchanged, NULL vs a value is a change; a NULL key matches a NULL key.
    assert (diff.added, diff.removed, diff.changed) == (0, 0, 2)
    assert diff.changed_examples == ((2,), (3,))


def test_compare_on_a_composite_key(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    columns = "region VARCHAR(10), id INTEGER, amount INTEGER"
    before = _table(sql, schemas.env, "before", columns, "('eu', 1, 1), ('us', 1, 2), ('eu', 2, 3)")
    after = _table(sql, schemas.env, "after", columns, "('eu', 1, 1), ('us', 1, 9), ('us', 2, 3)")

    diff = warehouse.compare_rows(before, after, ["region", "id"], ["amount"])

    assert (diff.added, diff.removed, diff.changed) == (1, 1, 1)
    assert diff.added_examples == (("us", 2),)
    assert diff.removed_examples == (("eu", 2),)
    assert diff.changed_examples == (("us", 1),)


def test_compare_identical_relations(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    before = _orders(sql, schemas.env, "before", "(1, 'a', 1), (2, NULL, NULL)")
    sql(f"CREATE VIEW {qualify(schemas.env, 'after')} AS SELECT * FROM {qualify(*before)}")

    diff = warehouse.compare_rows(before, (schemas.env, "after"), ["id"], ["status", "amount"])

    assert diff.identical
    assert diff.added_examples == diff.removed_examples == diff.changed_examples == ()


def test_compare_limits_examples_in_key_order(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    before = _orders(sql, schemas.env, "before", "(1, 'a', 1)")
    after = _orders(sql, schemas.env, "after", ", ".join(f"({i}, 'a', 1)" for i in range(30, 0, -1)))

    diff = warehouse.compare_rows(before, after, ["id"], ["status"], examples=3)
    none = warehouse.compare_rows(before, after, ["id"], ["status"], examples=0)

    assert diff.added == 29 and diff.added_examples == ((2,), (3,), (4,))
    assert none.added == 29 and none.added_examples == ()


def test_compare_a_retyped_column_as_text(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    before = _table(sql, schemas.env, "before", "id INTEGER, n INTEGER", "(1, 5), (2, 6)")
    after = _table(sql, schemas.env, "after", "id BIGINT, n VARCHAR(5)", "(1, '5'), (2, '7')")

    diff = warehouse.compare_rows(before, after, ["id"], ["n"])

    assert (diff.added, diff.removed, diff.changed) == (0, 0, 1)
    assert diff.changed_examples == (("2",),)  # a key of two types is compared, and shown, as text


@pytest.mark.parametrize("side", ["before", "after"])
def test_compare_refuses_a_key_that_is_not_unique(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, side: str
) -> None:
    rows = {"before": "(1, 'a', 1), (2, 'b', 2)", "after": "(1, 'a', 1), (2, 'b', 2)"}
    rows[side] += ", (2, 'c', 3)"
    before = _orders(sql, schemas.env, "before", rows["before"])
    after = _orders(sql, schemas.env, "after", rows["after"])

    with pytest.raises(WarehouseError) as raised:
        warehouse.compare_rows(before, after, ["id"], ["status"])

    message = str(raised.value)
    assert "not unique" in message and qualify(schemas.env, side) in message and "id=2" in message


def test_compare_a_missing_relation_or_column(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    before = _orders(sql, schemas.env, "before", "(1, 'a', 1)")
    after = _table(sql, schemas.env, "after", "id INTEGER, status VARCHAR(20)", "(1, 'a')")

    with pytest.raises(NotFoundError, match="nope"):
        warehouse.compare_rows(before, (schemas.env, "nope"), ["id"], [])
    with pytest.raises(WarehouseError, match="'amount'"):
        warehouse.compare_rows(before, after, ["id"], ["amount"])
    with pytest.raises(WarehouseError, match="key column 'order_id'"):
        warehouse.compare_rows(before, after, ["order_id"], ["status"])


def test_compare_hostile_names(warehouse: Warehouse, sql: RunSQL, schemas: Schemas) -> None:
    schema, columns = (
        f"{schemas.env}_{HOSTILE}",
        f"{qualify(HOSTILE)} INTEGER, {qualify(HOSTILE + '2')} INTEGER",
    )
    before = _table(sql, schema, f"b {HOSTILE}", columns, "(1, 1), (2, 2)")
    after = _table(sql, schema, f"a {HOSTILE}", columns, "(1, 1), (2, 3)")

    diff = warehouse.compare_rows(before, after, [HOSTILE], [HOSTILE + "2"])

    assert (diff.added, diff.removed, diff.changed, diff.changed_examples) == (0, 0, 1, ((2,),))


# --- query ------------------------------------------------------------------------------


def test_query_returns_the_first_rows_and_the_total(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas
) -> None:
    _table(sql, schemas.env, "t", "a INTEGER, b VARCHAR(5)", ", ".join(f"({i}, 'x{i}')" for i in range(1, 8)))

    result = warehouse.query(f"SELECT b, a FROM {qualify(schemas.env, 't')} ORDER BY a DESC", limit=3)

    assert result.columns == ("b", "a")
    assert result.rows == (("x7", 7), ("x6", 6), ("x5", 5))
    assert result.total == 7 and result.more


@pytest.mark.parametrize(("limit", "rows", "more"), [(0, 0, True), (2, 2, False), (5, 2, False)])
def test_query_limits(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas, limit: int, rows: int, more: bool
) -> None:
    _table(sql, schemas.env, "t", "a INTEGER", "(1), (2)")

    result = warehouse.query(f"SELECT a FROM {qualify(schemas.env, 't')}", limit=limit)

    assert (len(result.rows), result.total, result.more) == (rows, 2, more)


def test_query_takes_a_trailing_semicolon_and_comments(warehouse: Warehouse) -> None:
    text = "-- why\nWITH x AS (SELECT 1 AS a) /* ; */ SELECT a, ';' AS s FROM x; -- done\n"

    assert warehouse.query(text, limit=5).rows == ((1, ";"),)


def test_query_error_carries_the_database_message(warehouse: Warehouse, schemas: Schemas) -> None:
    with pytest.raises(WarehouseError, match="no_such_table"):
        warehouse.query(f"SELECT * FROM {qualify(schemas.env, 'no_such_table')}", limit=1)

    assert warehouse.query("SELECT 1 AS a", limit=1).rows == ((1,),)  # the connection is fine


WRITES = [
    "INSERT INTO {t} VALUES (9)",
    "DELETE FROM {t}",
    "UPDATE {t} SET a = 0",
    "CREATE TABLE {s}.{n} AS SELECT 1 AS a",
    "DROP TABLE {t}",
    "SELECT 1; DROP TABLE {t}",
    "SELECT 1 AS a) AS q; COMMIT; CREATE TABLE {s}.{n} (a INTEGER); SELECT * FROM (SELECT 1",
    "WITH gone AS (DELETE FROM {t} RETURNING a) SELECT * FROM gone",
]


@pytest.mark.parametrize("statement", WRITES)
def test_query_refuses_to_write(warehouse: Warehouse, sql: RunSQL, schemas: Schemas, statement: str) -> None:
    _table(sql, schemas.env, "t", "a INTEGER", "(1), (2)")
    text = statement.format(t=qualify(schemas.env, "t"), s=qualify(schemas.env), n=qualify("made"))

    with pytest.raises(WarehouseError):
        warehouse.query(text, limit=5)

    assert warehouse.relations(schemas.env) == {"t"}
    assert sql(f"SELECT a FROM {qualify(schemas.env, 't')} ORDER BY a") == [(1,), (2,)]


@pytest.mark.parametrize("text", ["", "  -- nothing\n", ";"])
def test_query_refuses_an_empty_query(warehouse: Warehouse, text: str) -> None:
    with pytest.raises(WarehouseError, match="empty"):
        warehouse.query(text, limit=1)


# --- one_statement (no warehouse) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "statement"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT 1;\n-- end\n", "SELECT 1"),
        ("SELECT ';' AS a ; ;", "SELECT ';' AS a "),
        ('SELECT 1 AS "a;b";', 'SELECT 1 AS "a;b"'),
        ("SELECT $$;$$, $x$ ; $x$;", "SELECT $$;$$, $x$ ; $x$"),
        ("SELECT E'\\';' /* ; */ -- ;\n;", "SELECT E'\\';' /* ; */ -- ;\n"),
    ],
)
def test_one_statement_strips_the_end(text: str, statement: str) -> None:
    assert one_statement(text) == statement


@pytest.mark.parametrize("text", ["SELECT 1; SELECT 2", "SELECT 1;\n\nDROP TABLE t", "; SELECT 1"])
def test_one_statement_refuses_a_second(text: str) -> None:
    with pytest.raises(WarehouseError, match="second statement"):
        one_statement(text)


# --- PostgreSQL's statement timeout and session settings ---------------------------------


@pytest.fixture
def postgres(postgres_database: str) -> Iterator[PostgresWarehouse]:
    warehouse = connect(postgres_connection(postgres_database))
    assert isinstance(warehouse, PostgresWarehouse)
    yield warehouse
    warehouse.close()


@pytest.mark.postgres
def test_postgres_query_times_out(postgres: PostgresWarehouse) -> None:
    with pytest.raises(WarehouseError, match="statement timeout") as raised:
        postgres.query("SELECT pg_sleep(5)", limit=1, timeout_ms=100)

    assert "100 ms" in str(raised.value)
    assert postgres.query("SELECT 1 AS a", limit=1).rows == ((1,),)


@pytest.mark.postgres
def test_postgres_query_cannot_change_the_session(postgres: PostgresWarehouse) -> None:
    postgres.query("SELECT set_config('standard_conforming_strings', 'off', false)", limit=1)

    setting = "SELECT current_setting('standard_conforming_strings')"
    assert postgres.query(setting, limit=1).rows == (("on",),)


@pytest.mark.postgres
def test_postgres_compares_json_as_text(postgres: PostgresWarehouse, postgres_database: str) -> None:
    # json has no equality operator, so EXCEPT could not compare it as it is.
    statements = [
        "CREATE TABLE before AS SELECT * FROM (VALUES (1, '{\"a\": 1}'::json), (2, '[]')) AS t(id, j)",
        "CREATE TABLE after AS SELECT * FROM (VALUES (1, '{\"a\": 1}'::json), (2, '[1]')) AS t(id, j)",
    ]
    con = psycopg2.connect(**postgres_dsn(postgres_database))
    with con, con.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    con.close()

    diff = postgres.compare_rows(("public", "before"), ("public", "after"), ["id"], ["j"])

    assert (diff.changed, diff.changed_examples) == (1, ((2,),))
