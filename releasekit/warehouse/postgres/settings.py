"""What PostgresWarehouse reads from Connection.settings: psycopg2's connect arguments, the
role to SET, and the lock timeout.

Connection.settings (dbt-postgres `credentials.to_dict()` gives these): host, port, user,
password (or pass), dbname (or Connection.database), connect_timeout, role, sslmode,
sslcert, sslkey, sslrootcert, keepalives_idle; releasekit's own: lock_timeout_ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import Connection

# Under the server's deadlock_timeout (1 s by default): when a reader and a switch wait
# for each other, the switch's timeout fires first and the reader carries on.
DEFAULT_LOCK_TIMEOUT_MS = 500
_PASSED_THROUGH = ("sslmode", "sslcert", "sslkey", "sslrootcert", "keepalives_idle")


@dataclass(frozen=True)
class Settings:
    dsn: dict[str, Any]  # keyword arguments of psycopg2.connect
    role: str | None
    lock_timeout_ms: int

    @property
    def where(self) -> str:
        return f"{self.dsn['host']}:{self.dsn['port']}/{self.dsn['dbname']}"


def read_settings(connection: Connection) -> Settings:
    raw = connection.settings
    dbname = connection.database or raw.get("dbname") or raw.get("database")
    if not dbname:
        raise WarehouseError(
            "the PostgreSQL connection names no database", hint="set `dbname` in the dbt profile's target"
        )
    dsn: dict[str, Any] = {
        "host": str(raw.get("host") or "localhost"),
        "port": _int_setting(raw, "port", 5432, minimum=1),
        "dbname": str(dbname),
        "connect_timeout": _int_setting(raw, "connect_timeout", 10, minimum=0),
        "application_name": "releasekit",
    }
    password = raw.get("password", raw.get("pass"))
    optional = {"user": raw.get("user"), "password": password}
    optional.update({key: raw.get(key) for key in _PASSED_THROUGH})
    dsn.update({key: value for key, value in optional.items() if value not in (None, "", 0)})
    lock_timeout = _int_setting(raw, "lock_timeout_ms", DEFAULT_LOCK_TIMEOUT_MS, minimum=1)
    return Settings(dsn=dsn, role=raw.get("role") or None, lock_timeout_ms=lock_timeout)


def _int_setting(raw: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = raw.get(key)
    if value is None:
        return default
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if number < minimum:
        raise WarehouseError(
            f"the PostgreSQL connection setting {key!r} must be a whole number >= {minimum}, got {value!r}"
        )
    return number
