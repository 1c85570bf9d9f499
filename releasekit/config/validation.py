"""JSON Schema validation and the problems it finds, each located by file and key path.

`Problem` is one thing wrong; `config_error` folds all of them into the single ConfigError
that `loader` raises, so a user sees every problem of every file in one run.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]

from releasekit.config.safe_yaml import AliasExpansionError, DuplicateKeyError
from releasekit.config.secrets import redact_urls
from releasekit.errors import ConfigError

SUPPORTED_VERSION = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the configuration, located by file (or source) and key path."""

    source: str
    key: str | None
    message: str
    hint: str | None = None

    def render(self) -> str:
        where = ":".join(part for part in (self.source, self.key) if part)
        line = redact_urls(f"{where}: {self.message}")  # a bad endpoint_url may hold a password
        return line if self.hint is None else f"{line}\n    hint: {redact_urls(self.hint)}"


@cache
def schema_validator(name: str) -> Draft202012Validator:
    text = (files("releasekit.config") / "schemas" / f"{name}.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
    return Problem(source, None, f"invalid YAML{where}: {what}", hint=_yaml_hint(exc))


def _yaml_hint(exc: yaml.YAMLError) -> str:
    if isinstance(exc, DuplicateKeyError):
        return "keep one of the two keys"
    if isinstance(exc, AliasExpansionError):
        return "write the values out, or nest fewer aliases"
    return "fix the YAML syntax there"


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def schema_problems(
    instance: Any, validator: Draft202012Validator, source: str, base: Sequence[Any] = ()
) -> list[Problem]:
    # An unknown version first: the other problems may just be a newer format.
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (list(e.path) != ["version"], [str(p) for p in e.path]),
    )
    return [problem for e in errors for problem in _translate(e, source, [*base, *e.path])]


def _translate(error: ValidationError, source: str, path: list[Any]) -> list[Problem]:
    kind = str(error.validator)
    if "propertyNames" in error.schema_path:
        return [Problem(source, _dotted(path), f"key {error.instance!r} is not a string")]
    if kind == "additionalProperties":
        return _unknown_keys(error, source, path)
    if kind == "required":
        return _missing_keys(error, source, path)
    return [_value_problem(error, source, path)]


def _unknown_keys(error: ValidationError, source: str, path: list[Any]) -> list[Problem]:
    allowed = list(error.schema.get("properties", {}))
    hint = f"remove it or check its spelling; allowed keys: {', '.join(allowed)}"
    problems = []
    for key in (k for k in error.instance if k not in allowed):
        close = difflib.get_close_matches(str(key), allowed, n=1)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        problems.append(Problem(source, _dotted([*path, key]), message, hint))
    return problems


def _missing_keys(error: ValidationError, source: str, path: list[Any]) -> list[Problem]:
    missing = [key for key in error.validator_value if key not in error.instance]
    hints = {"version": f"add `version: {SUPPORTED_VERSION}` at the top of the file"}
    return [
        Problem(source, _dotted([*path, k]), "missing required key", hints.get(k, f"add `{k}:`"))
        for k in missing
    ]


def _value_problem(error: ValidationError, source: str, path: list[Any]) -> Problem:
    kind, expected, value = str(error.validator), error.validator_value, error.instance
    key = _dotted(path)
    if kind == "type":
        wanted = [expected] if isinstance(expected, str) else expected
        alternatives = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        return Problem(source, key, f"wrong type: {_describe(value)}", f"expected {alternatives}")
    if kind == "const" and path and path[-1] == "version":
        hint = f"this releasekit reads version {expected}; set `version: {expected}`"
        return Problem(source, key, f"unsupported version {value!r}", hint)
    if kind == "minimum":
        return Problem(source, key, f"must be at least {expected}, got {value!r}")
    if kind == "minLength":
        return Problem(source, key, "must not be empty", "write a value, or remove the key")
    if kind in ("pattern", "maxLength"):
        return Problem(source, key, f"{value!r} is not allowed", _expected(error.schema))
    return Problem(source, key, error.message)


def _expected(schema: Mapping[str, Any]) -> str | None:
    description = schema.get("description")
    return None if description is None else f"expected {description}"


def _describe(value: Any) -> str:
    for kind, words in ((bool, "true/false"), (int, "an integer"), (float, "a number")):
        if isinstance(value, kind):
            return f"got {words} ({value!r})"
    names = {str: "a string", list: "a list", dict: "a mapping", type(None): "null"}
    return f"got {names.get(type(value), type(value).__name__)}"


def _dotted(path: Iterable[Any]) -> str | None:
    return ".".join(str(part) for part in path) or None


def config_error(problems: Sequence[Problem]) -> ConfigError:
    """One error for them all: a lone problem keeps its file, key and hint as fields."""
    if len(problems) == 1:
        only = problems[0]
        return ConfigError(only.message, file=only.source, key=only.key, hint=only.hint)
    lines = "\n".join("  " + problem.render() for problem in problems)
    return ConfigError(f"{len(problems)} problems in the releasekit configuration:\n{lines}")
