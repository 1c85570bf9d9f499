"""The one place SQL identifiers and literals are made.

Branch names, model names and environment names are untrusted: they can hold `"`, `;`,
`$(...)`, backticks and non-ASCII. Nothing reaches SQL except through `quote` (identifiers)
or `string_literal` (values); both are valid for DuckDB and PostgreSQL.

Physical relation names are built to fit: PostgreSQL cuts identifiers over 63 bytes
silently, so two long names could land on one relation. `physical_name` never needs
cutting downstream and is injective (up to a SHA-256 prefix collision).
"""

from __future__ import annotations

import hashlib
import re

_CLEAN_NAME = re.compile(r"[a-z0-9_]+")
_UNSAFE_CHAR = re.compile(r"[^a-z0-9_]")
_FINGERPRINT_TAG = re.compile(r"[0-9a-z]{8}")
_TAG_CHARS = 8
_DIGEST_CHARS = 8
# stem "__" tag "_" digest, with at least one character of stem.
_MIN_HASHED_BYTES = 1 + 2 + _TAG_CHARS + 1 + _DIGEST_CHARS

# dbt's intermediate/temp/backup relations: `<name>__dbt_tmp`, `__dbt_backup`, dbt-duckdb's
# `__dbt_int` and `__dbt_fk_backup`; dbt-duckdb and dbt-postgres append a timestamp of
# digits, microbatch appends `_<batch id>` such as `_20240917T16`.
_DBT_LEFTOVER = re.compile(r"__dbt_(?:tmp|backup|int|fk_backup)(?:_?[0-9][0-9a-z]*)?$", re.IGNORECASE)


def quote(identifier: str) -> str:
    """`identifier` as a double-quoted SQL identifier (DuckDB and PostgreSQL)."""
    _reject_nul(identifier, "identifier")
    if not identifier:
        raise ValueError("an SQL identifier cannot be empty")
    return '"' + identifier.replace('"', '""') + '"'


def qualify(*parts: str) -> str:
    """A dotted name, every part quoted: qualify("prod", "orders") -> "prod"."orders"."""
    return ".".join(quote(part) for part in parts)


def string_literal(value: str) -> str:
    """`value` as a single-quoted SQL string literal.

    Doubling `'` is the whole escape in DuckDB and in PostgreSQL with
    standard_conforming_strings on (its default since 9.1): backslashes are literal.
    """
    _reject_nul(value, "string literal")
    return "'" + value.replace("'", "''") + "'"


def physical_name(model_name: str, fingerprint: str, *, max_bytes: int = 63) -> str:
    """The relation a model version is built into: `<model>__<fingerprint[:8]>`.

    Output holds only `[a-z0-9_]`, so it reads the same quoted or not and case-folding
    warehouses cannot merge two names. A model name that is not already lowercase
    `[a-z0-9_]`, or that is too long, gets the hashed form
    `<cleaned, cut model>__<fingerprint[:8]>_<sha256(model)[:8]>`. The two forms cannot
    meet: the 10th character from the end is `_` in the plain form and a letter or digit
    (the tag's last) in the hashed one.
    """
    if not model_name:
        raise ValueError("a model name cannot be empty")
    if max_bytes < _MIN_HASHED_BYTES:
        raise ValueError(f"max_bytes must be at least {_MIN_HASHED_BYTES}, got {max_bytes}")
    tag = _fingerprint_tag(fingerprint)
    plain = f"{model_name}__{tag}"
    if _CLEAN_NAME.fullmatch(model_name) and len(plain) <= max_bytes:
        return plain
    return _hashed_name(model_name, tag, max_bytes)


def is_dbt_leftover(name: str) -> bool:
    """True for relations an interrupted dbt run leaves behind (`__dbt_tmp`, `__dbt_backup`)."""
    return _DBT_LEFTOVER.search(name) is not None


def _fingerprint_tag(fingerprint: str) -> str:
    tag = fingerprint[:_TAG_CHARS].lower()
    if not _FINGERPRINT_TAG.fullmatch(tag):
        raise ValueError(f"a fingerprint must start with 8 letters or digits, got {fingerprint!r}")
    return tag


def _hashed_name(model_name: str, tag: str, max_bytes: int) -> str:
    # surrogatepass: model names come from file names, which may hold undecodable bytes.
    raw = model_name.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(raw).hexdigest()[:_DIGEST_CHARS]
    stem = _UNSAFE_CHAR.sub("_", model_name.lower())
    room = max_bytes - (2 + len(tag) + 1 + len(digest))
    # stem is ASCII, so cutting by characters is cutting by bytes.
    return f"{stem[:room]}__{tag}_{digest}"


def _reject_nul(text: str, what: str) -> None:
    # Neither warehouse can store NUL in a name or text value; drivers would cut or fail.
    if "\x00" in text:
        raise ValueError(f"an SQL {what} cannot contain a NUL byte: {text!r}")
