"""The pieces of config.secrets on their own: redaction of env_var values and of URL
userinfo, and the keyed hash fingerprints use."""

from __future__ import annotations

import hashlib
from pathlib import Path

from releasekit.config.secrets import KEY_ENV, Redactor, keyed_hasher, redact_urls


def test_values_are_replaced_by_a_marker_naming_the_variable() -> None:
    redact = Redactor.of(
        ["DB_PASSWORD", "SHOP_SECRET"], {"DB_PASSWORD": "pa55word", "SHOP_SECRET": "hunter2"}
    )
    text = "LINE 1: select 'hunter2', 'pa55word' -- hunter2"
    assert redact(text) == (
        "LINE 1: select '<redacted env_var SHOP_SECRET>', '<redacted env_var DB_PASSWORD>' "
        "-- <redacted env_var SHOP_SECRET>"
    )


def test_a_value_containing_another_is_replaced_whole() -> None:
    redact = Redactor.of(["A", "B"], {"A": "secret", "B": "secret-longer"})
    assert redact("x secret-longer y secret") == "x <redacted env_var B> y <redacted env_var A>"


def test_short_values_and_unread_variables_are_left_alone() -> None:
    redact = Redactor.of(["TARGET", "REGION"], {"TARGET": "dev", "REGION": "eu", "HOME": "/root/x"})
    assert redact("schema dev in eu at /root/x") == "schema dev in eu at /root/x"


def test_the_first_environment_that_sets_a_variable_wins() -> None:
    redact = Redactor.of(["X"], {}, {"X": "from-the-second"})
    assert redact("from-the-second") == "<redacted env_var X>"


def test_userinfo_secrets_in_urls_are_hidden() -> None:
    assert redact_urls("could not reach http://minio:pw@10.0.0.1:9000 (tried 4 times)") == (
        "could not reach http://minio:***@10.0.0.1:9000 (tried 4 times)"
    )
    assert redact_urls("https://ghp_token@github.com/a/b") == "https://***@github.com/a/b"
    assert redact_urls("s3://bucket/prefix and http://host/a@b") == "s3://bucket/prefix and http://host/a@b"


def test_the_keyed_hash_follows_the_value_and_the_key(tmp_path: Path) -> None:
    team = {KEY_ENV: "k" * 32}
    same, other = keyed_hasher(team), keyed_hasher({KEY_ENV: "q" * 32})
    assert same("v") == keyed_hasher(team)("v") != same("w")
    assert same("v") != other("v")
    assert hashlib.sha256(b"v").hexdigest() not in same("v")
