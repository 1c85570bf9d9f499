"""Branch name -> schema name: valid, fitting, deterministic, injective, never reserved.

`documented_rule` re-implements the rule as `branch_schema`'s docstring states it, so the
properties also check that users can predict their schema name from the README.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Collection, Iterable
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releasekit.warehouse.naming import branch_schema, qualify, quote

REPO = Path(__file__).resolve().parents[2]
SCHEMA = re.compile(r"[a-z_][a-z0-9_]*")
HASH_TAIL = re.compile(r"__[0-9a-f]{10}")
BUILT_IN_RESERVED = {
    "public",
    "information_schema",
    "pg_catalog",
    "pg_toast",
    "pg_temp",
    "main",
    "temp",
    "system",
    "rk__physical",
}
PREFIXES = ["br_", "", "_", "p", "ci_branch_", "b" * 20]

# Hypothesis: no example database in the repository, no deadline for list-sized examples.
PROPERTY = settings(
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
# min_size of every generated list: (200 + 250 + 200) x 80 = 52,000 names at least in the
# default run, and 800 x 80 = 64,000 more under `-m stress`.
NAMES_PER_EXAMPLE = 80


def documented_rule(branch: str, prefix: str = "br_", reserved: Collection[str] = ()) -> str:
    """The rule exactly as branch_schema's docstring tells it."""
    taken = {r.lower() for r in reserved} | {r.casefold() for r in reserved}

    def is_reserved(name: str) -> bool:
        return (
            name in BUILT_IN_RESERVED
            or name in taken
            or name.startswith("pg_")
            or re.search(r"__rk_(next|prev)(_[0-9a-f]+)?$", name) is not None
        )

    plain = prefix + branch
    if (
        re.fullmatch(r"[a-z0-9_]+", branch)
        and not plain[0].isdigit()
        and len(plain.encode()) <= 63
        and not HASH_TAIL.fullmatch(plain[-12:])
        and not is_reserved(plain)
    ):
        return plain
    lowered = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in branch)
    stem = re.sub(r"[^a-z0-9]+", "_", lowered).strip("_")
    raw = branch.encode("utf-8", "surrogatepass")

    def hashed(guard: str, attempt: int) -> str:
        data = raw + (b"\xff" + str(attempt).encode() if attempt else b"")
        digest = hashlib.sha256(data).hexdigest()[:10]
        cut = stem[: 63 - len(prefix) - len(guard) - 2 - 10].rstrip("_")
        return f"{prefix}{guard}{cut}__{digest}"

    name = hashed("", 0)
    if not name[0].isdigit() and not is_reserved(name):
        return name
    attempt = 0
    while is_reserved(name := hashed("_", attempt)):
        attempt += 1
    return name


def assert_valid(name: str) -> None:
    assert SCHEMA.fullmatch(name), name
    assert len(name.encode("utf-8")) <= 63, name
    assert name not in BUILT_IN_RESERVED and not name.startswith("pg_"), name
    assert not re.search(r"__rk_(next|prev)(_[0-9a-f]+)?$", name), name


def assert_injective(
    branches: Iterable[str], *, prefix: str = "br_", reserved: Collection[str] = ()
) -> dict[str, str]:
    seen: dict[str, str] = {}
    for branch in branches:
        schema = branch_schema(branch, prefix=prefix, reserved=reserved)
        assert seen.setdefault(schema, branch) == branch, (schema, seen[schema], branch)
    return seen


# --- strategies ------------------------------------------------------------------------

# Characters git allows in a ref, hostile shell/SQL ones included, plus some non-ASCII.
REF_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
    "\"'`;$(){}|&<>#!%=+,@"
    "üéÅßİ\u0131K日本語😀\u0301\u200b"  # \u0131: dotless i
)


def _valid_ref(ref: str) -> bool:
    # git check-ref-format, the parts a character alphabet does not settle already.
    parts = ref.split("/")
    return (
        ".." not in ref
        and "@{" not in ref
        and ref != "@"
        and not ref.startswith("-")
        and not ref.endswith(".")
        and all(part and not part.startswith(".") and not part.endswith(".lock") for part in parts)
    )


git_refs = (
    st.lists(st.text(alphabet=REF_CHARS, min_size=1, max_size=24), min_size=1, max_size=5)
    .map("/".join)
    .filter(_valid_ref)
)


# Already-clean names, short and around the 63-byte boundary.
clean_names = st.one_of(
    st.from_regex(r"[a-z0-9_]{1,70}", fullmatch=True), st.text(alphabet="abc019_", min_size=55, max_size=70)
)
# A tiny alphabet: many names that clean to the same stem (case, separators, lengths).
look_alikes = st.one_of(
    st.text(alphabet="aAbB0_-/.", min_size=1, max_size=20),
    st.text(alphabet="aAbB0_-/.", min_size=50, max_size=80),
)
# Anything at all, any Unicode, up to 300 characters.
any_text = st.one_of(st.text(min_size=1, max_size=40), st.text(min_size=40, max_size=300))
# Clean names that end like a hashed name or like an internal schema, or are reserved words.
TAILS = ["", "__rk_next", "__rk_prev", "__rk_next_0a1b2c3d4e5f", "__0123456789", "_abcdef0123", "__dbt_tmp"]
RESERVED_WORDS = ["public", "main", "temp", "system", "pg_", "pg_x", "rk__physical", "information_schema"]
lookalike_internals = st.builds(
    lambda head, tail: head + tail,
    st.one_of(st.from_regex(r"[a-z0-9_]{0,60}", fullmatch=True), st.sampled_from(RESERVED_WORDS)),
    st.sampled_from(TAILS),
).filter(bool)
branches = st.one_of(git_refs, clean_names, look_alikes, any_text, lookalike_internals)
branch_lists = st.lists(branches, min_size=NAMES_PER_EXAMPLE, max_size=100, unique=True)

# Every result the properties below see under these prefixes: result -> branch. A second
# branch reaching a result fails the test, whichever example or test brought either one.
SEEN: dict[str, dict[str, str]] = {"br_": {}, "": {}}


def check_and_remember(branch: str, prefix: str) -> str:
    schema = branch_schema(branch, prefix=prefix)
    assert_valid(schema)
    assert schema.startswith(prefix)
    assert branch_schema(branch, prefix=prefix) == schema
    assert documented_rule(branch, prefix) == schema
    if prefix in SEEN:
        seen = SEEN[prefix]
        assert seen.setdefault(schema, branch) == branch, (schema, seen[schema], branch)
    return schema


@pytest.mark.slow
@settings(PROPERTY, max_examples=200)
@given(names=branch_lists, prefix=st.sampled_from(PREFIXES))
def test_every_name_is_valid_deterministic_injective_and_as_documented(names: list[str], prefix: str) -> None:
    _every_name(names, prefix)


@pytest.mark.stress
@settings(PROPERTY, max_examples=800)
@given(names=branch_lists, prefix=st.sampled_from(PREFIXES))
def test_every_name_is_valid_deterministic_injective_and_as_documented_stress(
    names: list[str], prefix: str
) -> None:
    _every_name(names, prefix)


def _every_name(names: list[str], prefix: str) -> None:
    for branch in names:
        for each in {"br_", "", prefix}:
            check_and_remember(branch, each)
        # Look-alikes of each drawn name too: what they must never share is a schema.
        for variant in {branch.swapcase(), branch.replace("/", "_"), branch.replace("_", "-")} - {branch}:
            for each, seen in SEEN.items():
                schema = branch_schema(variant, prefix=each)
                assert_valid(schema)
                assert seen.setdefault(schema, variant) == variant, (schema, seen[schema], variant)


@pytest.mark.slow
@settings(PROPERTY, max_examples=250)
@given(names=branch_lists, prefix=st.sampled_from(PREFIXES))
def test_reserved_names_are_never_returned_and_the_rest_stays_injective(
    names: list[str], prefix: str
) -> None:
    # Reserve what the first names would get (in upper case), then map them all again.
    reserved = {branch_schema(branch, prefix=prefix).upper() for branch in names[:10]}

    seen = assert_injective(names, prefix=prefix, reserved=reserved)

    for schema, branch in seen.items():
        assert_valid(schema)
        assert schema.upper() not in reserved
        assert documented_rule(branch, prefix, reserved) == schema


@pytest.mark.slow
@settings(PROPERTY, max_examples=200)
@given(names=branch_lists)
def test_a_schema_name_used_as_a_branch_name_takes_no_other_branchs_schema(names: list[str]) -> None:
    for branch in names:
        schema = check_and_remember(branch, "")
        again = check_and_remember(schema, "")
        # Plain results map to themselves (they are the branch); hashed ones move away.
        assert (again == schema) == (schema == branch)


def _family(rng: random.Random) -> list[str]:
    """Branch names built to meet: case, separator, prefix-sharing and Unicode variants."""
    words = ["feat", "fix", "x", "JIRA-123", "ünï", "日本", "a", "release", "😀", "pg", "main"]
    base = "/".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        base += "-" + "".join(rng.choices("abcdef0123456789", k=rng.randint(1, 12)))
    if rng.random() < 0.2:
        base = base.ljust(rng.randint(55, 90), rng.choice("x_-"))
    variants = {
        base,
        base.upper(),
        base.lower(),
        base.swapcase(),
        base.replace("/", "_"),
        base.replace("/", "-"),
        base.replace("/", "."),
        base.replace("-", "_"),
        base + "_",
        "_" + base,
        base + "/" + rng.choice(words),
    }
    return sorted(variants)


def test_100k_random_look_alike_names_are_injective() -> None:
    rng = random.Random(20240917)
    names: set[str] = set()
    while len(names) < 100_000:
        names.update(_family(rng))

    for prefix in ("br_", ""):
        seen = assert_injective(sorted(names), prefix=prefix)

        assert len(seen) == len(names)
        for schema in seen:
            assert_valid(schema)


# --- examples and the hostile corpus ---------------------------------------------------

HOSTILE = [
    'zzz";echo${IFS}"hello";#',
    "feat/$(id)",
    "feat/`whoami`",
    "feat/'quoted'",
    'feat/"quoted"',
    "a;b|c&d>e",
    "a;b|c&d<e",
    "x; DROP SCHEMA public CASCADE; --",
    "FEATURE/SHOUTING",
    "Feat/X",
    "feat/x",
    "feat_x",
    "a-b",
    "a_b",
    "a.b",
    "a/b",
    "feat/a",
    "feat_a",
    "feature/😀-emoji",
    "feature/😀-émoji",
    "機能/日本語",
    "機能/中文",
    "café",  # precomposed é
    "cafe\u0301",  # e + combining acute
    "\u212a",  # KELVIN SIGN, lowercases to ASCII k in Python
    "k",
    "K",
    "branch\udcff",  # a lone surrogate, as os.fsdecode makes from a bad byte
    "x" * 300,
    "x" * 299 + "y",
    "a" * 60,  # br_ + 60 = 63 bytes: plain
    "a" * 61,  # 64 bytes: hashed
    "a" * 62,
    "q" * 63 + "1",  # equal up to byte 63 (and beyond the cut)
    "q" * 63 + "2",
    "q" * 63,
    "public",
    "PUBLIC",
    "Public",
    "main",
    "temp",
    "system",
    "information_schema",
    "pg_catalog",
    "pg_x",
    "PG_X",
    "pg",
    "rk__physical",
    "prod__rk_next",
    "prod__rk_prev",
    "prod__rk_next_0123456789ab",  # the PostgreSQL adapter's staging name of a long schema
    "prod__rk_prev_0",
    "123abc",
    "0123456789",
    "x__0123456789",  # looks like a hashed name
    "feature_x__217d2bf51f",  # is the hashed name of feature/x with an empty prefix
    "_",
    "__",
    "-",
    "/",
    "@",
    "new\nline",
    "nul\x00byte",
    " ",
]


def test_hostile_corpus_is_distinct_valid_and_as_documented() -> None:
    assert len(set(HOSTILE)) == len(HOSTILE)
    for prefix in PREFIXES:
        seen = assert_injective(HOSTILE, prefix=prefix)

        assert len(seen) == len(HOSTILE)
        for schema, branch in seen.items():
            assert_valid(schema)
            assert documented_rule(branch, prefix) == schema


@pytest.mark.parametrize("prefix", ["br_", ""])
def test_every_hostile_schema_works_in_duckdb(prefix: str) -> None:
    con = duckdb.connect(":memory:")
    schemas = [branch_schema(branch, prefix=prefix) for branch in HOSTILE]

    for schema in schemas:
        # No IF NOT EXISTS: two branches on one schema would fail here.
        con.execute(f"CREATE SCHEMA {quote(schema)}")
        con.execute(f"CREATE TABLE {qualify(schema, 'orders')} AS SELECT {string(schema)} AS owner")

    for schema in schemas:
        assert con.execute(f"SELECT owner FROM {qualify(schema, 'orders')}").fetchall() == [(schema,)]
        # Valid unquoted too: the name is its own case-folded form.
        assert con.execute(f"SELECT owner FROM {schema}.orders").fetchall() == [(schema,)]
    created = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database()"
        " AND schema_name NOT IN ('main', 'information_schema', 'pg_catalog')"
    ).fetchone()
    assert created == (len(HOSTILE),)


def string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def test_plain_names_read_naturally() -> None:
    assert branch_schema("feature_x") == "br_feature_x"
    assert branch_schema("feature_x", prefix="") == "feature_x"
    assert branch_schema("jira_2024061501") == "br_jira_2024061501"
    assert branch_schema("a" * 60) == "br_" + "a" * 60


def test_names_are_pinned() -> None:
    # Changing these renames every existing branch environment: do not, without a migration.
    assert branch_schema("feature/x") == "br_feature_x__217d2bf51f"
    assert branch_schema("Feat/X") == "br_feat_x__46e004a673"
    assert branch_schema("feat/x") == "br_feat_x__79b4cc554b"
    assert branch_schema("a-b") == "br_a_b__d44362d67d"
    assert branch_schema('zzz";echo${IFS}"hello";#') == "br_zzz_echo_ifs_hello__1727572958"
    assert branch_schema("機能/日本語") == "br___" + hashlib.sha256("機能/日本語".encode()).hexdigest()[:10]
    assert branch_schema("pg_x", prefix="") == "_pg_x__4e7a5dc0c9"
    assert branch_schema("123abc", prefix="") == "_123abc__dd130a849d"


def test_normalised_or_cut_names_carry_the_hash_of_the_exact_branch() -> None:
    for branch in ["feature/x", "Feature_X", "a" * 64, "x__rk_next", "public"]:
        digest = hashlib.sha256(branch.encode()).hexdigest()[:10]
        assert branch_schema(branch, prefix="").endswith("__" + digest)


@pytest.mark.parametrize(
    ("first", "second"),
    [("Feat/X", "feat/x"), ("a-b", "a_b"), ("feat/a", "feat_a"), ("a" * 70 + "1", "a" * 70 + "2")],
)
def test_look_alikes_stay_apart(first: str, second: str) -> None:
    for prefix in PREFIXES:
        assert branch_schema(first, prefix=prefix) != branch_schema(second, prefix=prefix)


@pytest.mark.parametrize("branch", ["public", "PUBLIC", "main", "temp", "system", "rk__physical", "pg_x"])
def test_branches_named_like_reserved_schemas_are_moved(branch: str) -> None:
    schema = branch_schema(branch, prefix="")

    assert_valid(schema)
    assert HASH_TAIL.search(schema)


def test_internal_staging_suffixes_are_never_produced() -> None:
    assert branch_schema("prod__rk_next") == "br_prod_rk_next__" + sha10("prod__rk_next")
    assert branch_schema("prod__rk_prev", prefix="") == "prod_rk_prev__" + sha10("prod__rk_prev")
    long_staging = "x" * 20 + "__rk_next_" + "0123456789ab"
    assert branch_schema(long_staging) == "br_" + "x" * 20 + "_rk_next_0123456789ab__" + sha10(long_staging)
    assert branch_schema("prod__rk_nextday") == "br_prod__rk_nextday"


def test_caller_reserved_names_are_avoided_case_insensitively() -> None:
    assert branch_schema("dev", prefix="", reserved=["DEV"]) == "dev__" + sha10("dev")
    assert branch_schema("dev", prefix="", reserved={"staging", "prod"}) == "dev"


def test_the_guard_then_further_hashes_get_past_reserved_names() -> None:
    first = branch_schema("dev", prefix="", reserved=["dev"])
    guarded = branch_schema("dev", prefix="", reserved=["dev", first])
    rehashed = branch_schema("dev", prefix="", reserved=["dev", first, guarded])

    assert first == "dev__" + sha10("dev")
    assert guarded == "_dev__" + sha10("dev")
    assert rehashed == "_dev__" + hashlib.sha256(b"dev\xff1").hexdigest()[:10]
    assert branch_schema("dev", prefix="", reserved=["dev", first, guarded, rehashed]) == (
        "_dev__" + hashlib.sha256(b"dev\xff2").hexdigest()[:10]
    )


def test_reserving_many_hashed_names_still_terminates() -> None:
    reserved = ["dev", "dev__" + sha10("dev")]
    for _ in range(50):
        reserved.append(branch_schema("dev", prefix="", reserved=reserved))

    assert len(set(reserved)) == 52
    assert branch_schema("dev", prefix="", reserved=reserved) not in reserved


def sha10(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def test_empty_branch_is_refused() -> None:
    with pytest.raises(ValueError, match="branch name cannot be empty"):
        branch_schema("")


@pytest.mark.parametrize(
    "prefix", ["Br_", "1br_", "br-", "br /", "b" * 21, "pg", "pg_", "pg_br_", "ü_", "br_\n"]
)
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        branch_schema("feature_x", prefix=prefix)


def test_a_single_string_is_not_a_reserved_collection() -> None:
    with pytest.raises(TypeError, match="reserved"):
        branch_schema("p", prefix="", reserved="prod")


def test_names_do_not_depend_on_the_process() -> None:
    # str hashing is salted per process: a set or dict order leaking into the name shows here.
    code = (
        "import json, sys\n"
        "from releasekit.warehouse.naming import branch_schema\n"
        "names = json.loads(sys.stdin.read())\n"
        "print(json.dumps([branch_schema(n, prefix=p) for p in ('br_', '') for n in names]))\n"
    )
    corpus = [branch for branch in HOSTILE if "\udcff" not in branch]
    expected = [branch_schema(n, prefix=p) for p in ("br_", "") for n in corpus]
    for seed in ("0", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(corpus),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )
        assert json.loads(result.stdout) == expected
