"""Identifiers and literals: quoting untrusted strings, fitting physical names."""

from __future__ import annotations

import re

import duckdb
import pytest

from releasekit.warehouse.naming import (
    is_dbt_leftover,
    physical_name,
    qualify,
    quote,
    string_literal,
)

FINGERPRINT = "a1b2c3d4e5f60718"
UNTRUSTED = [
    'say "hi"',
    'a""b',
    "x; DROP TABLE orders; --",
    "`whoami`",
    "$(id)",
    "feature/ünïcødé-日本",
    "it's",
    "back\\slash",
    "new\nline",
    " ",
]


def test_quote_doubles_double_quotes() -> None:
    assert quote('a"b') == '"a""b"'
    assert quote("orders") == '"orders"'


@pytest.mark.parametrize("name", UNTRUSTED)
def test_quoted_identifier_round_trips_through_duckdb(name: str) -> None:
    con = duckdb.connect(":memory:")
    con.execute(f"CREATE SCHEMA {quote(name)}")
    con.execute(f"CREATE TABLE {qualify(name, name)} AS SELECT 1 AS {quote(name)}")

    cursor = con.execute(f"SELECT * FROM {qualify(name, name)}")

    assert cursor.description is not None
    assert cursor.description[0][0] == name
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (1,)


@pytest.mark.parametrize("value", [*UNTRUSTED, "'; --", "", "''"])
def test_string_literal_round_trips_through_duckdb(value: str) -> None:
    con = duckdb.connect(":memory:")

    assert con.execute(f"SELECT {string_literal(value)}").fetchone() == (value,)


def test_string_literal_doubles_single_quotes() -> None:
    assert string_literal("o'brien") == "'o''brien'"


@pytest.mark.parametrize("make", [quote, string_literal])
def test_nul_bytes_are_refused(make: object) -> None:
    assert callable(make)
    with pytest.raises(ValueError, match="NUL"):
        make("a\x00b")


def test_empty_identifier_is_refused() -> None:
    with pytest.raises(ValueError):
        quote("")


def test_physical_name_of_a_plain_model() -> None:
    assert physical_name("orders", FINGERPRINT) == "orders__a1b2c3d4"
    assert physical_name("stg_stripe__payments", FINGERPRINT.upper()) == ("stg_stripe__payments__a1b2c3d4")


def test_physical_name_is_deterministic() -> None:
    name = "Ünusual Model" + "x" * 80
    assert physical_name(name, FINGERPRINT) == physical_name(name, FINGERPRINT)


@pytest.mark.parametrize("max_bytes", [20, 30, 63, 127])
@pytest.mark.parametrize(
    "model",
    ["m" * 200, "日本語" * 40, 'a"b;$(id)' * 10, "Orders"],
    ids=["long", "cjk", "hostile", "upper"],
)
def test_physical_name_fits_and_is_plain_ascii(model: str, max_bytes: int) -> None:
    name = physical_name(model, FINGERPRINT, max_bytes=max_bytes)

    assert len(name.encode("utf-8")) <= max_bytes
    assert re.fullmatch(r"[a-z0-9_]+", name)
    assert re.search(r"__a1b2c3d4(_[0-9a-f]{8})?$", name)


def test_long_names_sharing_a_prefix_stay_apart() -> None:
    prefix = "p" * 70
    first = physical_name(prefix + "_orders", FINGERPRINT)
    second = physical_name(prefix + "_customers", FINGERPRINT)

    assert first != second
    assert len(first) <= 63 and len(second) <= 63


def test_names_that_clean_to_the_same_text_stay_apart() -> None:
    names = ["Orders", "orders", "ORDERS", "or-ders", "or ders", "or_ders", "orders_", "ördérs"]

    assert len({physical_name(name, FINGERPRINT) for name in names}) == len(names)


def test_plain_and_hashed_forms_never_meet() -> None:
    # A clean model named like another model's hashed physical name must not take it.
    hashed = physical_name("Orders", FINGERPRINT)
    stem, _, digest = hashed.rpartition("_")
    candidates = [hashed, stem, hashed[: -len("__a1b2c3d4")], f"orders__a1b2c3d4_{digest}"]

    assert all(physical_name(c, FINGERPRINT) != hashed for c in candidates if c != "Orders")


def test_many_tricky_names_are_injective() -> None:
    base = ["a", "A", "a_", "a-", "a__", "ä", "a" * 60, "A" * 60, "a" * 59 + "b", "a" * 61]
    names = {f"{x}{y}" for x in base for y in base}

    assert len({physical_name(name, FINGERPRINT) for name in names}) == len(names)


@pytest.mark.parametrize("fingerprint", ["", "abc", "a1b2c3d-", "zz zz zz"])
def test_physical_name_refuses_a_bad_fingerprint(fingerprint: str) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        physical_name("orders", fingerprint)


def test_physical_name_refuses_an_empty_model_or_a_tiny_limit() -> None:
    with pytest.raises(ValueError):
        physical_name("", FINGERPRINT)
    with pytest.raises(ValueError, match="max_bytes"):
        physical_name("orders", FINGERPRINT, max_bytes=19)


@pytest.mark.parametrize(
    "name",
    [
        "orders__dbt_tmp",
        "orders__dbt_backup",
        "orders__a1b2c3d4__dbt_tmp",
        "orders__dbt_tmp20240917101112123456",  # dbt-duckdb temp table
        "orders__dbt_tmp101112123456",  # dbt-postgres incremental temp
        "orders__dbt_tmp_20240917T16",  # microbatch batch
        "orders__dbt_tmp_20240917T1620240917101112123456",
        "orders__dbt_int",
        "orders__dbt_fk_backup",
        "ORDERS__DBT_TMP",
    ],
)
def test_dbt_leftovers_are_recognised(name: str) -> None:
    assert is_dbt_leftover(name)


@pytest.mark.parametrize(
    "name",
    [
        "orders",
        "orders__a1b2c3d4",
        "dbt_tmp",
        "orders__dbt_tmp_extra",
        "orders__dbt_tmpl",
        physical_name("orders__dbt_tmp", FINGERPRINT),  # a model that merely has the name
    ],
)
def test_other_relations_are_not_leftovers(name: str) -> None:
    assert not is_dbt_leftover(name)
