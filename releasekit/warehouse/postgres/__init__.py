"""PostgreSQL, through psycopg2 (which dbt-postgres installs).

The adapter is split by concept; its modules share public names:

- adapter: PostgresWarehouse, the Warehouse Protocol over the modules below.
- settings: what it reads from Connection.settings (psycopg2's arguments, role, lock timeout).
- transactions: the connection and the transactions work runs in (lock timeout, retries).
- statements: how one statement runs and fails, naming what it touches.
- staging: the switch's statements (build in a staging schema, then swap), and grants.py
  the grants a switch gives its views.
- catalog: what the catalog says (relations, readers, our views, the marker), and drops.
- inspection: the read-only transaction `releasekit check` reads in.
"""

from __future__ import annotations

from releasekit.warehouse.postgres.adapter import PostgresWarehouse
from releasekit.warehouse.postgres.inspection import QUERY_TIMEOUT_MS
from releasekit.warehouse.postgres.settings import DEFAULT_LOCK_TIMEOUT_MS
from releasekit.warehouse.postgres.staging import staging_schema
from releasekit.warehouse.postgres.transactions import ATTEMPTS

__all__ = ["ATTEMPTS", "DEFAULT_LOCK_TIMEOUT_MS", "QUERY_TIMEOUT_MS", "PostgresWarehouse", "staging_schema"]
