"""What releasekit does with secrets it cannot help seeing: the values of `env_var()`s.

- **Fingerprints** hash an `env_var()` value with HMAC-SHA256 under a fingerprint key that
  never enters the state store, so a ledger (which may live in a bucket) holds no hash a
  low-entropy secret could be recovered from. The key is `RELEASEKIT_FINGERPRINT_KEY` when
  set: a team sets the same value in CI and wherever it deploys from, so equal values give
  equal fingerprints on every runner and a version built once is reused everywhere. Without
  it, a key is generated once per user in `$XDG_CONFIG_HOME/releasekit/fingerprint.key`
  (default `~/.config/...`, mode 0600): right for one person; on machines with different
  keys, models that read an env var get different fingerprints and are rebuilt (never
  wrongly reused).
- **Messages** (dbt's failures, which can quote rendered SQL) have every such value
  replaced by a marker naming the variable before they are stored or shown (`Redactor`).
- **URLs** shown to the user (an `endpoint_url` in an error, `state show`, `doctor`) lose
  the secret part of their userinfo (`redact_urls`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from releasekit.errors import ConfigError

KEY_ENV = "RELEASEKIT_FINGERPRINT_KEY"
MIN_KEY_LENGTH = 16
KEY_FILE = Path("releasekit") / "fingerprint.key"
_KEY_HINT = (
    f'set {KEY_ENV} to a long random string (python -c "import secrets; print(secrets.token_hex(32))")'
)


def key_file(environ: Mapping[str, str]) -> Path:
    """Where the generated fingerprint key lives for this user."""
    if environ.get("XDG_CONFIG_HOME"):
        return Path(environ["XDG_CONFIG_HOME"]) / KEY_FILE
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".config" / KEY_FILE
    # An environ that names neither (a caller's partial one): this process's.
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / KEY_FILE


def fingerprint_key(environ: Mapping[str, str]) -> bytes:
    """The key env_var() values are hashed with: RELEASEKIT_FINGERPRINT_KEY, else this
    user's generated key file (created on first use)."""
    given = environ.get(KEY_ENV)
    if given:
        if len(given) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{KEY_ENV} is {len(given)} characters long; a fingerprint key needs at least "
                f"{MIN_KEY_LENGTH}",
                hint=_KEY_HINT,
            )
        return given.encode("utf-8")
    return _file_key(key_file(environ))


def _file_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read or create the fingerprint key {path}: {exc.strerror or exc}",
            hint=f"make {path.parent} writable, or {_KEY_HINT}",
        ) from exc
    if len(key) < MIN_KEY_LENGTH:
        hint = f"delete the file (a new one is made), or {_KEY_HINT}"
        raise ConfigError(f"the fingerprint key in {path} is too short", hint=hint)
    return key.encode("utf-8")


KEYED_PREFIX = "hmac-sha256:"


def keyed_hasher(environ: Mapping[str, str]) -> Callable[[str], str]:
    """`hmac-sha256:KEY_ID:DIGEST` of a value under the fingerprint key, the key read on
    first use only (a project whose models read no env var never needs one). KEY_ID, a
    keyed hash of a constant, tells two keys apart without saying anything of either."""
    key: list[bytes] = []

    def hash_value(value: str) -> str:
        if not key:
            key.append(fingerprint_key(environ))
        key_id = hmac.new(key[0], b"releasekit fingerprint key id", hashlib.sha256).hexdigest()[:8]
        keyed = hmac.new(key[0], value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{KEYED_PREFIX}{key_id}:{keyed}"

    return hash_value


def other_key(new: str | None, old: str | None) -> bool:
    """Whether two keyed digests were made with different fingerprint keys."""
    ids = [v.split(":")[1] for v in (new, old) if v and v.startswith(KEYED_PREFIX) and v.count(":") == 2]
    return len(ids) == 2 and ids[0] != ids[1]


# --- messages ----------------------------------------------------------------------------

_ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")


def env_var_names_in(text: str) -> frozenset[str]:
    """The names of the env vars Jinja `text` reads with a constant name."""
    return frozenset(_ENV_VAR_CALL.findall(text))


# Shorter values (a "1", "dev", "eu") are left alone: replacing them would mangle every
# message, and a secret that short is no secret.
MIN_REDACTED_LENGTH = 4


@dataclass(frozen=True)
class Redactor:
    """Replaces known secret values in text by `<redacted env_var NAME>`."""

    values: Mapping[str, str]  # value -> the name of the variable it came from

    @classmethod
    def of(cls, names: Iterable[str], *environs: Mapping[str, str]) -> Redactor:
        """The values that `environs` give the variables `names` (the first set one wins)."""
        found: dict[str, str] = {}
        for name in sorted(set(names)):
            for environ in environs:
                value = environ.get(name)
                if value is not None and len(value) >= MIN_REDACTED_LENGTH:
                    found.setdefault(value, name)
                    break
        return cls(found)

    def __call__(self, text: str) -> str:
        if not self.values or not text:
            return text
        # Longest first, so a value that contains another is replaced whole.
        pattern = "|".join(re.escape(v) for v in sorted(self.values, key=len, reverse=True))
        return re.sub(pattern, lambda m: f"<redacted env_var {self.values[m.group(0)]}>", text)


# --- URLs --------------------------------------------------------------------------------


# scheme://userinfo@ (userinfo: no "/", "@" or whitespace; a URL's host part follows).
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/@\s'\"]+)@", re.IGNORECASE)


def redact_urls(text: str) -> str:
    """`text` with the secret part of every URL's userinfo replaced: `http://user:***@host`
    (a password), `http://***@host` (a token alone). Other text is unchanged."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match.group(2).partition(":")
        return f"{match.group(1)}{user}:***@" if colon else f"{match.group(1)}***@"

    return _USERINFO.sub(hide, text)
