"""Small dbt projects built from dicts of files, for tests."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path

PROFILE = """\
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
      threads: 2
"""

PROJECT = """\
name: shop
version: "1.0"
profile: shop
vars:
  min_amount: 10
  unused_var: 1
"""

# A small DAG: raw_orders(seed) -> stg_orders -> orders -> revenue
#                                 stg_customers -> customers -> (orders joins customers)
BASE_FILES: dict[str, str] = {
    "dbt_project.yml": PROJECT,
    "profiles.yml": PROFILE,
    "seeds/raw_orders.csv": "id,customer_id,amount\n1,1,20\n2,1,5\n3,2,40\n",
    "models/stg_orders.sql": "select id, customer_id, amount from {{ ref('raw_orders') }}\n",
    "models/stg_customers.sql": "select 1 as customer_id, 'ann' as name union all select 2, 'bob'\n",
    "models/customers.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('stg_customers') }}\n",
    "models/orders.sql": (
        "{{ config(materialized='table') }}\n"
        "select o.id, o.customer_id, c.name, {{ cents('o.amount') }} as amount_cents\n"
        "from {{ ref('stg_orders') }} o join {{ ref('customers') }} c using (customer_id)\n"
        "where o.amount >= {{ var('min_amount') }}\n"
    ),
    "models/revenue.sql": (
        "select customer_id, sum(amount_cents) as revenue_cents from {{ ref('orders') }} group by 1\n"
    ),
    "models/big_spenders.sql": (
        "select customer_id from {{ ref('revenue') }} where revenue_cents > {{ threshold() }}\n"
    ),
    "macros/money.sql": (
        "{% macro cents(column) %}({{ column }} * 100){% endmacro %}\n"
        "{% macro threshold() %}{{ var('big_spender_cents', 1000) }}{% endmacro %}\n"
    ),
    "models/schema.yml": textwrap.dedent(
        """\
        version: 2
        models:
          - name: orders
            columns:
              - name: id
                data_tests: [unique, not_null]
        unit_tests:
          - name: revenue_sums_per_customer
            model: revenue
            given:
              - input: ref('orders')
                rows:
                  - {id: 1, customer_id: 1, name: ann, amount_cents: 100}
                  - {id: 2, customer_id: 1, name: ann, amount_cents: 50}
            expect:
              rows:
                - {customer_id: 1, revenue_cents: 150}
        """
    ),
}

RELEASEKIT_YML = "version: 1\n"
ENV_FILES = {
    "environments/dev.yml": "version: 1\nschema: dev\nbranch: main\n",
    "environments/prod.yml": (
        "version: 1\nschema: prod\nbranch: prod\npromotes_from: dev\nvars:\n  min_amount: 1\n"
    ),
}


def write_files(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def make_repo(root: Path, files: Mapping[str, str] | None = None, *, profile: str | None = None) -> Path:
    """A git repository holding the shop project plus releasekit config, committed.

    `profile` replaces the DuckDB profiles.yml (tests/postgres_support.py makes one for
    PostgreSQL)."""
    root.mkdir(parents=True, exist_ok=True)
    all_files = {
        **BASE_FILES,
        **({"profiles.yml": profile} if profile is not None else {}),
        "releasekit.yml": RELEASEKIT_YML,
        **ENV_FILES,
        ".gitignore": ".releasekit/\n*.duckdb\n*.wal\ntarget/\nlogs/\n",
    }
    write_files(root, {**all_files, **(files or {})})
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    commit(root, "initial project")
    return root


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def branch_here(root: Path, branch: str = "prod") -> str:
    """Point an environment's branch at HEAD, as a promotion would: a promoted environment
    (one with `promotes_from`) deploys only its branch head. Returns the commit."""
    git(root, "branch", "-f", branch, "HEAD")
    return git(root, "rev-parse", "HEAD")
