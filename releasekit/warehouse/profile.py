"""A relation's profile: what statistical process control measures of a model version, in
one aggregate query the adapters share (`Warehouse.profile`).

Metrics, by name:
- `row_count`: rows in the relation;
- `null_fraction.<column>`: the share of rows where the column is NULL (every column);
- `mean.<column>`, `min.<column>`, `max.<column>`: numeric columns;
- `newest.<column>`: the latest value of a date or timestamp column, in seconds since
  1970-01-01 UTC (a freshness measure).
A value is None where it has none: the mean of a column that is all NULL, any column
metric of an empty relation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from releasekit.warehouse.naming import qualify, quote

# Types as DuckDB and PostgreSQL spell them (information schema and duckdb_columns()).
_NUMERIC = re.compile(
    r"^(tinyint|smallint|integer|int|bigint|hugeint|utinyint|usmallint|uinteger|ubigint|uhugeint|"
    r"int[248]|float[48]?|real|double( precision)?|decimal|numeric)\b",
    re.IGNORECASE,
)
_TEMPORAL = re.compile(r"^(date|timestamp)\b", re.IGNORECASE)


def profile_query(schema: str, relation: str, columns: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    """The SELECT measuring the relation, and the name of each value it returns, in order."""
    expressions, names = ["count(*)"], ["row_count"]
    for column, data_type in columns:
        quoted = quote(column)
        expressions.append(f"count({quoted})")
        names.append(f"count.{column}")
        if _NUMERIC.match(data_type):
            for aggregate in ("avg", "min", "max"):
                expressions.append(f"CAST({aggregate}({quoted}) AS DOUBLE PRECISION)")
            names += [f"mean.{column}", f"min.{column}", f"max.{column}"]
        elif _TEMPORAL.match(data_type):
            expressions.append(f"CAST(extract(epoch FROM max({quoted})) AS DOUBLE PRECISION)")
            names.append(f"newest.{column}")
    return f"SELECT {', '.join(expressions)} FROM {qualify(schema, relation)}", names


def profile_of(names: Sequence[str], row: Sequence[object]) -> dict[str, float | None]:
    """The metrics of one row `profile_query` returned: counts become null fractions."""
    values = dict(zip(names, row, strict=True))
    rows = int(str(values.pop("row_count")))
    found: dict[str, float | None] = {"row_count": float(rows)}
    for name, value in values.items():
        kind, _, column = name.partition(".")
        if kind == "count":
            found[f"null_fraction.{column}"] = (rows - int(str(value))) / rows if rows else None
        else:
            found[name] = None if value is None else float(str(value))
    return found
