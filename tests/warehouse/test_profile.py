"""Warehouse.profile on every adapter: the metrics statistical process control judges,
measured in the warehouse in one query."""

from __future__ import annotations

import pytest

from releasekit.errors import NotFoundError
from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.naming import qualify
from tests.support.warehouse import RunSQL, Schemas


def test_measures_rows_nulls_means_ranges_and_the_newest_time(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas
) -> None:
    table = qualify(schemas.physical, "orders")
    sql(f"CREATE SCHEMA IF NOT EXISTS {schemas.physical}")
    sql(
        f'CREATE TABLE {table} (id INTEGER, amount NUMERIC(10, 2), "Odd name" VARCHAR(20), '
        "placed_at TIMESTAMP, shipped DATE, ok BOOLEAN)"
    )
    sql(
        f"INSERT INTO {table} VALUES "
        "(1, 10.50, 'a', TIMESTAMP '2026-12-01 10:00:00', DATE '2026-12-02', TRUE), "
        "(2, 20.50, NULL, TIMESTAMP '2026-12-03 00:00:00', NULL, NULL), "
        "(3, NULL, NULL, NULL, NULL, FALSE), "
        "(4, 30.50, 'b', TIMESTAMP '2026-12-02 00:00:00', NULL, TRUE)"
    )

    found = warehouse.profile(schemas.physical, "orders")

    assert found["row_count"] == 4
    assert found["null_fraction.id"] == 0
    assert found["null_fraction.Odd name"] == 0.5
    assert found["null_fraction.shipped"] == 0.75
    assert found["null_fraction.ok"] == 0.25
    assert found["mean.amount"] == pytest.approx(20.5)
    assert found["min.amount"] == pytest.approx(10.5)
    assert found["max.amount"] == pytest.approx(30.5)
    assert found["mean.id"] == 2.5
    assert found["newest.placed_at"] == 1_796_256_000  # 2026-12-03T00:00:00Z
    assert found["newest.shipped"] == 1_796_169_600  # 2026-12-02
    assert "mean.Odd name" not in found and "mean.ok" not in found


def test_an_empty_relation_has_rows_but_no_column_values(
    warehouse: Warehouse, sql: RunSQL, schemas: Schemas
) -> None:
    sql(f"CREATE SCHEMA IF NOT EXISTS {schemas.physical}")
    sql(f"CREATE TABLE {qualify(schemas.physical, 'empty')} (id INTEGER, amount DOUBLE PRECISION)")

    found = warehouse.profile(schemas.physical, "empty")

    assert found == {
        "row_count": 0,
        "null_fraction.id": None,
        "mean.id": None,
        "min.id": None,
        "max.id": None,
        "null_fraction.amount": None,
        "mean.amount": None,
        "min.amount": None,
        "max.amount": None,
    }


def test_a_missing_relation_is_named(warehouse: Warehouse, schemas: Schemas) -> None:
    with pytest.raises(NotFoundError, match="missing"):
        warehouse.profile(schemas.physical, "missing")
