"""Ledger entries to and from JSON documents, strictly.

A ledger document is the only record of what an environment serves, so reading is
strict: corrupt JSON, a format this release does not know, a missing field or a field of
the wrong type raises `StateError` naming the document. Nothing is skipped or repaired
silently; a half-understood ledger could send a rollback to the wrong release.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast, get_args

from releasekit.errors import StateError
from releasekit.state.base import (
    BranchEnvironment,
    CheckRecord,
    Claim,
    Kind,
    LedgerEntry,
    LockInfo,
    ModelVersion,
    Outcome,
)

LEDGER_FORMAT = "releasekit.ledger/1"
HOLDER_FORMAT = "releasekit.lock-holder/1"
CHECK_FORMAT = "releasekit.check/1"
_FORMAT_FAMILY = "releasekit.ledger/"
KEEP_HINT = "restore it from a backup or move it aside; releasekit never overwrites it"

_ENTRY_KEYS = frozenset(
    {"format", "env", "seq", "release_id", "kind", "outcome", "git_sha", "who", "at", "params"}
    | {"models", "built", "reused", "failures", "previous_release", "physical_schema", "note", "promotion"}
    | {"forced", "hold", "refresh", "spc"}
)
_MODEL_KEYS = frozenset({"unique_id", "name", "fingerprint", "relation", "inputs", "data", "written_at"})

T = TypeVar("T")


def dumps(entry: LedgerEntry) -> bytes:
    """The entry as the UTF-8 JSON stored on disk (stable key order, readable)."""
    text = json.dumps(entry_to_document(entry), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def loads(data: bytes, *, where: str) -> LedgerEntry:
    """Parse a stored document; `where` (a file path or object key) names it in errors."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{where}: not valid JSON ({exc})", hint=KEEP_HINT) from None
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a releasekit ledger document", hint=KEEP_HINT)
    return entry_from_document(document, where=where)


def entry_to_document(entry: LedgerEntry) -> dict[str, Any]:
    """A JSON-able dict. Tuples inside `params` come back as lists (JSON has no tuples)."""
    return {
        "format": LEDGER_FORMAT,
        "env": entry.env,
        "seq": entry.seq,
        "release_id": entry.release_id,
        "kind": entry.kind,
        "outcome": entry.outcome,
        "git_sha": entry.git_sha,
        "who": entry.who,
        "at": entry.at,
        "params": dict(entry.params),
        "models": {uid: _model_to_document(model) for uid, model in entry.models.items()},
        "built": list(entry.built),
        "reused": list(entry.reused),
        "failures": list(entry.failures),
        "previous_release": entry.previous_release,
        "physical_schema": entry.physical_schema,
        "note": entry.note,
        # Written only when present, so a plain deploy's document reads as before.
        **({"promotion": dict(entry.promotion)} if entry.promotion else {}),
        **({"forced": dict(entry.forced)} if entry.forced else {}),
        **({"hold": dict(entry.hold)} if entry.hold else {}),
        **({"refresh": dict(entry.refresh)} if entry.refresh else {}),
        **({"spc": dict(entry.spc)} if entry.spc else {}),
    }


def entry_from_document(document: Mapping[str, Any], *, where: str) -> LedgerEntry:
    _check_format(document, where)
    fields = _Fields(document, where)
    fields.reject_unknown(_ENTRY_KEYS)
    return LedgerEntry(
        env=fields.get("env", str),
        seq=fields.integer("seq"),
        release_id=fields.integer("release_id"),
        kind=cast(Kind, fields.choice("kind", get_args(Kind))),
        outcome=cast(Outcome, fields.choice("outcome", get_args(Outcome))),
        git_sha=fields.get("git_sha", str),
        who=fields.get("who", str),
        at=fields.get("at", str),
        params=fields.get("params", dict),
        models=_models_from(fields),
        built=fields.strings("built"),
        reused=fields.strings("reused"),
        failures=fields.strings("failures"),
        previous_release=fields.optional_integer("previous_release"),
        physical_schema=fields.get("physical_schema", str),
        note=fields.get("note", str),
        promotion=fields.get("promotion", dict) if "promotion" in document else {},
        forced=fields.get("forced", dict) if "forced" in document else {},
        hold=fields.get("hold", dict) if "hold" in document else {},
        refresh=fields.get("refresh", dict) if "refresh" in document else {},
        spc=fields.get("spc", dict) if "spc" in document else {},
    )


REGISTRY_FORMAT = "releasekit.registry/1"


def branch_to_document(record: BranchEnvironment) -> dict[str, Any]:
    return {"format": REGISTRY_FORMAT, **dataclasses.asdict(record)}


def branch_to_bytes(record: BranchEnvironment) -> bytes:
    return json_bytes(branch_to_document(record))


def branch_from_bytes(data: bytes, *, where: str) -> BranchEnvironment:
    """A registry record; StateError naming `where` when it does not read."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"{where}: unreadable registry record: {exc}", hint=KEEP_HINT) from None
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a releasekit registry record", hint=KEEP_HINT)
    return branch_from_document(document, where=where)


def json_bytes(document: Any) -> bytes:
    """How releasekit writes a JSON document other than a ledger entry: sorted, indented."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def branch_from_document(document: Mapping[str, Any], *, where: str) -> BranchEnvironment:
    if document.get("format") != REGISTRY_FORMAT:
        raise StateError(
            f"{where}: not a releasekit registry record (format {document.get('format')!r})", hint=KEEP_HINT
        )
    fields = _Fields(document, where)
    return BranchEnvironment(
        branch=fields.get("branch", str),
        schema=fields.get("schema", str),
        base=fields.get("base", str),
        base_release=fields.integer("base_release"),
        owner=fields.get("owner", str),
        created_at=fields.get("created_at", str),
        expires_at=fields.get("expires_at", str),
        pinned=fields.get("pinned", bool),
    )


def holder_to_document(info: LockInfo) -> dict[str, Any]:
    return {
        "format": HOLDER_FORMAT,
        "env": info.env,
        "owner": info.owner,
        "host": info.host,
        "pid": info.pid,
        "since": info.since,
        "id": info.id,
    }


def holder_from_bytes(data: bytes, *, where: str) -> LockInfo:
    """A local lock-holder record; StateError naming `where` when it does not read (its hint
    says to delete it: unlike a ledger document, a holder record is safe to remove)."""
    hint = "if no releasekit run of this environment is going on, delete it"
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise StateError(f"{where}: unreadable lock-holder record: {exc}", hint=hint) from None
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a releasekit lock-holder record", hint=hint)
    try:
        return holder_from_document(document, where=where)
    except StateError as exc:  # the document hint is for ledger documents, which are never replaced
        raise StateError(exc.message, hint=hint) from None


def holder_from_document(document: Mapping[str, Any], *, where: str) -> LockInfo:
    if document.get("format") != HOLDER_FORMAT:
        raise StateError(f"{where}: not a releasekit lock-holder record")
    fields = _Fields(document, where)
    return LockInfo(
        env=fields.get("env", str),
        owner=fields.get("owner", str),
        host=fields.get("host", str),
        pid=fields.integer("pid"),
        since=fields.get("since", str),
        id=fields.get("id", str),
    )


def claim_to_document(physical_schema: str, builds: Sequence[str], uses: Sequence[str]) -> dict[str, Any]:
    """The `claim` a lock record carries (older releasekits ignore the key)."""
    return {"physical_schema": physical_schema, "builds": list(builds), "uses": list(uses)}


def claim_from_document(
    document: Mapping[str, Any], info: LockInfo, live: bool, *, where: str
) -> Claim | None:
    """The claim in a lock record, None when it has none."""
    raw = document.get("claim")
    if raw is None:
        return None
    fields = _Fields(document, where).nested("claim", raw)
    return Claim(
        env=info.env,
        lock_id=info.id,
        owner=info.owner,
        physical_schema=fields.get("physical_schema", str),
        builds=fields.strings("builds"),
        uses=fields.strings("uses"),
        live=live,
    )


def check_to_bytes(record: CheckRecord) -> bytes:
    document = {"format": CHECK_FORMAT, **dataclasses.asdict(record)}
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


def record_fields(data: bytes, *, where: str, format_name: str, what: str, kind: type) -> _Fields:
    """The fields of a JSON document of `format_name` holding a `kind` dataclass (a check or
    metric record), unknown fields refused; StateError naming `where` and `what`."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{where}: unreadable {what}: {exc}", hint=KEEP_HINT) from exc
    if not isinstance(document, dict) or document.get("format") != format_name:
        found = document.get("format") if isinstance(document, dict) else None
        raise StateError(f"{where}: not a releasekit {what} (format {found!r})", hint=KEEP_HINT)
    fields = _Fields(document, where)
    fields.reject_unknown(frozenset({"format", *(f.name for f in dataclasses.fields(kind))}))
    return fields


def check_from_bytes(data: bytes, *, where: str) -> CheckRecord:
    fields = record_fields(data, where=where, format_name=CHECK_FORMAT, what="check record", kind=CheckRecord)
    statuses = fields.get("statuses", dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in statuses.items()):
        raise fields.invalid("statuses", "should map check names to statuses")
    return CheckRecord(
        git_sha=fields.get("git_sha", str),
        env=fields.get("env", str),
        base=fields.get("base", str),
        release_id=fields.optional_integer("release_id"),
        passed=fields.get("passed", bool),
        verdict=fields.get("verdict", str),
        statuses=statuses,
        who=fields.get("who", str),
        at=fields.get("at", str),
        report=fields.get("report", dict),
        seq=fields.integer("seq"),
        **_coverage(fields, statuses),
    )


def _coverage(fields: _Fields, statuses: Mapping[str, str]) -> dict[str, Any]:
    """What a check covered. A record from before releasekit wrote it: the checks that ran
    are those with an outcome, and one skipped for a reason nobody recorded is `unknown`
    (so the record is no full check)."""
    if "skipped" not in fields.document:
        return {
            "ran": tuple(name for name, status in statuses.items() if status != "skipped"),
            "skipped": {name: "unknown" for name, status in statuses.items() if status == "skipped"},
            "content": None,
        }
    skipped = fields.get("skipped", dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in skipped.items()):
        raise fields.invalid("skipped", "should map check names to reasons")
    content = fields.get("content", object)
    if content is not None and not isinstance(content, str):
        raise fields.invalid("content", f"should be str or null, not {type(content).__name__}")
    return {"ran": fields.strings("ran"), "skipped": skipped, "content": content}


def _check_format(document: Mapping[str, Any], where: str) -> None:
    found = document.get("format")
    if found == LEDGER_FORMAT:
        return
    if isinstance(found, str) and found.startswith(_FORMAT_FAMILY):
        raise StateError(
            f"{where}: ledger format {found!r} is not one this releasekit reads ({LEDGER_FORMAT})",
            hint="a newer releasekit wrote it: upgrade releasekit; releasekit never overwrites it",
        )
    raise StateError(f"{where}: not a releasekit ledger document (format {found!r})", hint=KEEP_HINT)


def _model_to_document(model: ModelVersion) -> dict[str, Any]:
    return {
        "unique_id": model.unique_id,
        "name": model.name,
        "fingerprint": model.fingerprint,
        "relation": model.relation,
        "inputs": dict(model.inputs),
        # Written only when known, so a version recorded without them reads as before.
        **({"data": dict(model.data)} if model.data else {}),
        **({"written_at": model.written_at} if model.written_at else {}),
    }


def _models_from(fields: _Fields) -> dict[str, ModelVersion]:
    models: dict[str, ModelVersion] = {}
    for uid, raw in fields.get("models", dict).items():
        model = _model_from(fields.nested(f"models.{uid}", raw))
        if model.unique_id != uid:
            raise fields.invalid(f"models.{uid}", f"holds unique_id {model.unique_id!r}")
        models[uid] = model
    return models


def _model_from(fields: _Fields) -> ModelVersion:
    fields.reject_unknown(_MODEL_KEYS)
    inputs = _strings_map(fields, "inputs")
    return ModelVersion(
        unique_id=fields.get("unique_id", str),
        name=fields.get("name", str),
        fingerprint=fields.get("fingerprint", str),
        relation=fields.get("relation", str),
        inputs=inputs,
        data=_strings_map(fields, "data") if "data" in fields.document else {},
        written_at=fields.get("written_at", str) if "written_at" in fields.document else "",
    )


def _strings_map(fields: _Fields, key: str) -> dict[str, str]:
    values = fields.get(key, dict)
    for name, value in values.items():
        if not isinstance(value, str):
            raise fields.invalid(f"{key}.{name}", "should be a string")
    return values


@dataclass(frozen=True)
class _Fields:
    """Typed access to one JSON object; every problem names the document and key path."""

    document: Mapping[str, Any]
    where: str
    prefix: str = ""

    def invalid(self, key: str, problem: str) -> StateError:
        return StateError(f"{self.where}: {self.prefix}{key}: {problem}", hint=KEEP_HINT)

    def get(self, key: str, kind: type[T]) -> T:
        if key not in self.document:
            raise self.invalid(key, "missing")
        value = self.document[key]
        # bool is an int subclass in Python; a JSON `true` is never a valid number here.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.invalid(key, f"should be {kind.__name__}, not {type(value).__name__}")
        return value

    def integer(self, key: str) -> int:
        return self.get(key, int)

    def optional_integer(self, key: str) -> int | None:
        return None if self.get(key, object) is None else self.integer(key)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key, str)
        if value not in allowed:
            raise self.invalid(key, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list)
        if not all(isinstance(value, str) for value in values):
            raise self.invalid(key, "should be a list of strings")
        return tuple(values)

    def nested(self, key: str, value: object) -> _Fields:
        if not isinstance(value, dict):
            raise self.invalid(key, f"should be an object, not {type(value).__name__}")
        return _Fields(value, self.where, f"{self.prefix}{key}.")

    def reject_unknown(self, known: frozenset[str]) -> None:
        # A field this release does not know could carry meaning it would drop: refuse.
        unknown = sorted(set(self.document) - known)
        if unknown:
            raise self.invalid(unknown[0], "unknown field (written by a newer releasekit?)")


_KEY_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_KEY_MAX = 120  # leaves room for suffixes under the usual 255-byte file-name limit
_KEY_HASHED_PREFIX = 96


def env_key(env: str) -> str:
    """A file name (or object-key segment) for an environment: safe, injective, readable.

    Environment names can be git branch names (`feature/x`, quotes, non-ASCII). Lowercase
    ASCII letters, digits and `._-` stay as they are; every other byte of the UTF-8 name is
    percent-encoded, upper-case letters too, so `Prod` and `prod` stay apart on
    case-insensitive file systems (macOS, Windows). A leading dot is encoded so no key is
    `.`, `..` or hidden. Keys too long for a file name keep a readable prefix and end in
    `~` plus a digest; `~` never appears in an encoded key, so they cannot collide with one.
    """
    if not env:
        raise StateError("an environment name cannot be empty")
    key = "".join(_encode_char(char) for char in env)
    if key.startswith("."):
        key = "%2E" + key[1:]
    if len(key) <= _KEY_MAX:
        return key
    digest = hashlib.sha256(env.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return f"{key[:_KEY_HASHED_PREFIX]}~{digest}"


# Branch environments' ledgers live under `ledger/branch~<env-key>/`, apart from declared
# environments' (`ledger/<env-key>/`): `~` never appears at that place in an env key.
BRANCH_LEDGER_PREFIX = "branch~"


def ledger_folder_env_key(folder_name: str) -> tuple[str, bool]:
    """(the env key, whether it is the branch namespace) of a ledger folder's name."""
    if folder_name.startswith(BRANCH_LEDGER_PREFIX):
        return folder_name[len(BRANCH_LEDGER_PREFIX) :], True
    return folder_name, False


def legacy_branch_ledger_error(where: str, env: str, branch_where: str) -> StateError:
    """A declared environment finds, in its own ledger folder, the ledger a branch
    environment of that name wrote before branch environments had a namespace."""
    return StateError(
        f"{where}: holds the ledger of a branch environment named {env!r} (written by a releasekit "
        f"before branch ledgers moved to their own namespace), not of the declared environment {env!r}",
        hint=f"move that ledger to {branch_where} (every document, same names), then rerun; releasekit "
        "moves no ledger by itself",
    )


def env_from_key(key: str) -> str | None:
    """The environment `env_key` made `key` from; None for a long name's digest key."""
    if "~" in key:
        return None
    try:
        name = urllib.parse.unquote(key, errors="strict")
    except UnicodeDecodeError:
        return None
    return name if name and env_key(name) == key else None


def _encode_char(char: str) -> str:
    if char in _KEY_SAFE:
        return char
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
