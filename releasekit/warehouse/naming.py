"""The one place SQL identifiers and literals are made.

Branch names, model names and environment names are untrusted: they can hold `"`, `;`,
`$(...)`, backticks and non-ASCII. Nothing reaches SQL except through `quote` (identifiers)
or `string_literal` (values); both are valid for DuckDB and PostgreSQL.

Physical relation names are built to fit: PostgreSQL cuts identifiers over 63 bytes
silently, so two long names could land on one relation. `physical_name` never needs
cutting downstream and is injective (up to a SHA-256 prefix collision). `branch_schema`
does the same for the schema of a branch environment.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Collection

_CLEAN_NAME = re.compile(r"[a-z0-9_]+")
_UNSAFE_CHAR = re.compile(r"[^a-z0-9_]")
_FINGERPRINT_TAG = re.compile(r"[0-9a-z]{8}")
_TAG_CHARS = 8
_DIGEST_CHARS = 8
# stem "__" tag "_" digest, with at least one character of stem.
_MIN_HASHED_BYTES = 1 + 2 + _TAG_CHARS + 1 + _DIGEST_CHARS

_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_MAX_PREFIX_BYTES = 20
_BRANCH_DIGEST_CHARS = 10  # 40 bits
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_BRANCH_HASH_TAIL = re.compile(r"__[0-9a-f]{10}\Z")
_NOT_ALNUM_RUN = re.compile(r"[^a-z0-9]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# PostgreSQL's and DuckDB's own schemas; DuckDB's built-in catalogs `system` and `temp` (a
# schema named like a catalog makes `name.table` ambiguous there); releasekit's physical schema.
_RESERVED_SCHEMAS = frozenset(
    {"public", "information_schema", "pg_catalog", "pg_toast", "pg_temp", "main", "temp", "system"}
    | {"rk__physical"}
)
_RESERVED_SCHEMA_PREFIXES = ("pg_",)
# The PostgreSQL adapter's staging schemas: `<schema>__rk_next`, or `<cut>__rk_next_<hex>` for
# a long schema; `__rk_prev` is kept for the same use. No hashed name can match: its hex tail
# follows `__`, not `__rk_next_`.
_RESERVED_SCHEMA_TAIL = re.compile(r"__rk_(?:next|prev)(?:_[0-9a-f]+)?\Z")

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


def branch_schema(branch: str, *, prefix: str = "br_", reserved: Collection[str] = ()) -> str:
    """The schema of a git branch's environment. The rule, to predict a name by hand:

    1. Plain. If `branch` holds only `a-z`, `0-9` and `_`, the schema is `prefix + branch`,
       provided that is at most 63 bytes, does not start with a digit (possible only with an
       empty prefix), does not end in `__` and 10 characters of `0-9a-f` (the tail of the
       hashed form), and is not reserved. `feature_x` -> `br_feature_x`.
    2. Hashed, in every other case (a character changed, the name cut, or a reserved name):
       `prefix + stem + "__" + hash`, where
       - hash is the first 10 hex digits of the SHA-256 of the exact branch name in UTF-8;
       - stem is the branch name with `A-Z` lowered, each run of characters other than `a-z`
         and `0-9` (`_` included) replaced by one `_`, `_` removed from both ends, then cut
         to fit 63 bytes and any `_` left at the end of the cut removed. Letters outside
         ASCII are not transliterated: `ü`, `日` or an emoji separate words like `/` does.
       `feature/x` -> `br_feature_x__<hash>`; `Feat/X` -> `br_feat_x__<another hash>`.
    3. Guard. If the hashed name starts with a digit or is reserved, `_` goes between prefix
       and stem (`pg_x` with an empty prefix -> `_pg_x__<hash>`). If that is reserved too
       (only a name in `reserved` can be), the hash is taken over the branch name's UTF-8
       bytes followed by the byte 0xFF and `1`, then `2`, and so on, until the name is free.

    Reserved, compared case-insensitively: each name in `reserved` (pass the environments'
    consumer schemas, the physical schema and, on DuckDB, the database's catalog name),
    `public`, `information_schema`, `pg_catalog`, `pg_toast`, `pg_temp`, `main`, `temp`,
    `system`, `rk__physical`, every name starting with `pg_`, and every name ending in
    `__rk_next` or `__rk_prev`, alone or followed by `_` and hex digits (the PostgreSQL
    adapter's staging schemas).

    The result matches `[a-z_][a-z0-9_]*`, so it reads the same quoted or not, and is at most
    63 bytes, so PostgreSQL never cuts it. It depends only on these three arguments: the same
    on every warehouse, machine and Python version (no Unicode tables are used). Distinct
    branch names get distinct schemas under one prefix and reserved set: plain names differ
    as the branch names do, hashed names always end in `__` and 10 hex digits and plain ones
    never do, and two hashed names meet only if their stems and 40-bit hashes both do.

    Raises ValueError for an empty branch name, and for a prefix that is not empty or
    `[a-z_][a-z0-9_]*`, is longer than 20 bytes, or is `pg` or starts with `pg_`.
    """
    _check_branch_prefix(prefix)
    if not branch:
        raise ValueError("a branch name cannot be empty")
    if isinstance(reserved, str):
        raise TypeError(f"reserved must be a collection of schema names, not the string {reserved!r}")
    taken = {name.lower() for name in reserved} | {name.casefold() for name in reserved}

    plain = prefix + branch
    if (
        _CLEAN_NAME.fullmatch(branch)
        and _SCHEMA_NAME.fullmatch(plain)
        and len(plain) <= _MAX_IDENTIFIER_BYTES  # ASCII: characters are bytes
        and not _BRANCH_HASH_TAIL.search(plain)
        and not _is_reserved_schema(plain, taken)
    ):
        return plain

    # surrogatepass: a branch read through os.fsdecode may hold lone surrogates.
    raw = branch.encode("utf-8", "surrogatepass")
    stem = _NOT_ALNUM_RUN.sub("_", branch.translate(_ASCII_LOWER)).strip("_")
    name = _hashed_schema(prefix, "", stem, raw, 0)
    if _SCHEMA_NAME.fullmatch(name) and not _is_reserved_schema(name, taken):
        return name
    # Terminates: a guarded name ends in hex, so it cannot be a built-in reserved name, it
    # cannot start with `pg_` (such prefixes are refused), and `reserved` is finite.
    for attempt in itertools.count():
        name = _hashed_schema(prefix, "_", stem, raw, attempt)
        if not _is_reserved_schema(name, taken):
            return name
    raise AssertionError("unreachable")  # pragma: no cover


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


def _check_branch_prefix(prefix: str) -> None:
    if prefix and not _SCHEMA_NAME.fullmatch(prefix):
        raise ValueError(
            "a branch schema prefix must be empty or lowercase letters, digits and _ "
            f"not starting with a digit, got {prefix!r}"
        )
    if len(prefix) > _MAX_PREFIX_BYTES:
        raise ValueError(f"a branch schema prefix must be at most {_MAX_PREFIX_BYTES} bytes, got {prefix!r}")
    if prefix == "pg" or prefix.startswith("pg_"):
        raise ValueError(
            f"a branch schema prefix cannot be 'pg' or start with 'pg_' (PostgreSQL reserves "
            f"schema names starting with pg_), got {prefix!r}"
        )


def _hashed_schema(prefix: str, guard: str, stem: str, raw: bytes, attempt: int) -> str:
    # UTF-8 never holds the byte 0xFF, so `raw` alone and `raw + 0xFF + attempt` are distinct
    # inputs for every (branch, attempt): only a SHA-256 prefix collision can give two branches
    # one hash, whichever attempt each needed.
    data = raw if attempt == 0 else raw + b"\xff" + str(attempt).encode("ascii")
    digest = hashlib.sha256(data).hexdigest()[:_BRANCH_DIGEST_CHARS]
    room = _MAX_IDENTIFIER_BYTES - len(prefix) - len(guard) - 2 - len(digest)
    # stem is ASCII, so cutting by characters is cutting by bytes.
    return f"{prefix}{guard}{stem[:room].rstrip('_')}__{digest}"


def _is_reserved_schema(name: str, taken: Collection[str]) -> bool:
    # `name` is lowercase ASCII already.
    return (
        name in _RESERVED_SCHEMAS
        or name in taken
        or name.startswith(_RESERVED_SCHEMA_PREFIXES)
        or _RESERVED_SCHEMA_TAIL.search(name) is not None
    )


def _reject_nul(text: str, what: str) -> None:
    # Neither warehouse can store NUL in a name or text value; drivers would cut or fail.
    if "\x00" in text:
        raise ValueError(f"an SQL {what} cannot contain a NUL byte: {text!r}")
