"""A dbt project whose sources are loaded outside dbt (a `raw` schema), for refresh tests:
new data arrives in the warehouse, and `releasekit refresh` moves environments onto it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# raw.orders -> stg_orders (view) -> orders (table) -> revenue (view)
# raw.customers -> stg_customers (view) -> customers (table) -> orders
# raw.events -> events (incremental, appends new ids)
# seed regions -> region_names (table): no source, never refreshed
REFRESH_FILES: dict[str, str] = {
    "models/sources.yml": textwrap.dedent(
        """\
        version: 2
        sources:
          - name: raw
            schema: raw
            tables:
              - name: orders
              - name: customers
              - name: events
        """
    ),
    "models/stg_orders.sql": "select id, customer_id, amount from {{ source('raw', 'orders') }}\n",
    "models/stg_customers.sql": "select id as customer_id, name from {{ source('raw', 'customers') }}\n",
    "models/customers.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('stg_customers') }}\n",
    "models/orders.sql": (
        "{{ config(materialized='table') }}\n"
        "select o.id, o.customer_id, c.name, o.amount\n"
        "from {{ ref('stg_orders') }} o join {{ ref('customers') }} c using (customer_id)\n"
    ),
    "models/revenue.sql": "select customer_id, sum(amount) as revenue from {{ ref('orders') }} group by 1\n",
    "models/events.sql": (
        "{{ config(materialized='incremental', unique_key='id') }}\n"
        "select id, kind from {{ source('raw', 'events') }}\n"
        "{% if is_incremental() %}where id > (select coalesce(max(id), 0) from {{ this }}){% endif %}\n"
    ),
    "seeds/regions.csv": "code,name\neu,Europe\nus,Americas\n",
    "models/region_names.sql": "{{ config(materialized='table') }}\nselect name from {{ ref('regions') }}\n",
    "models/schema.yml": textwrap.dedent(
        """\
        version: 2
        models:
          - name: orders
            columns:
              - name: id
                data_tests: [unique, not_null]
              - name: amount
                data_tests: [not_null]
          - name: events
            columns:
              - name: id
                data_tests: [unique]
        """
    ),
    "logic_tests/no_negative_revenue.sql": (
        "-- description: no customer has negative revenue\n"
        "select customer_id from {{ ref('revenue') }} where revenue < 0\n"
    ),
}

ORDERS = [(1, 1, 20), (2, 1, 5), (3, 2, 40)]
CUSTOMERS = [(1, "ann"), (2, "bob")]
EVENTS = [(1, "open"), (2, "click")]

Execute = Callable[[str], Any]


def load_raw(execute: Execute) -> None:
    """Create the raw schema with its first data."""
    execute("create schema if not exists raw")
    execute("create table raw.orders (id integer, customer_id integer, amount integer)")
    execute("create table raw.customers (id integer, name varchar(40))")
    execute("create table raw.events (id integer, kind varchar(20))")
    insert(execute, "orders", ORDERS)
    insert(execute, "customers", CUSTOMERS)
    insert(execute, "events", EVENTS)


def insert(execute: Execute, table: str, rows: Iterable[tuple[object, ...]]) -> None:
    values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    execute(f"insert into raw.{table} values {values}")


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def duckdb_execute(path: Path) -> Callable[[str], None]:
    """Run statements on a DuckDB file (the test's, when no releasekit run holds it)."""
    import duckdb

    def execute(sql: str) -> None:
        with duckdb.connect(str(path)) as con:
            con.execute(sql)

    return execute


def refresh_repo(root: Path, *, profile: str | None = None, files: dict[str, str] | None = None) -> Path:
    """The shop repository with REFRESH_FILES in place of its seed-fed models, committed."""
    from tests.support.projects import commit, make_repo

    repo = make_repo(root, {**REFRESH_FILES, **(files or {})}, profile=profile)
    for seed_fed in ("models/big_spenders.sql", "seeds/raw_orders.csv", "macros/money.sql"):
        (repo / seed_fed).unlink()
    commit(repo, "sources loaded outside dbt")
    return repo
