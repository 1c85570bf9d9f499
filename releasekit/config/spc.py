"""Statistical process control settings: merged over each other, and a model's own
`meta: {releasekit: {spc: ...}}` held to the same JSON Schema as the files' `spc:`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.config.model import SpcPolicy
from releasekit.config.validation import config_error, schema_problems, schema_validator


def spc_policy(base: SpcPolicy, settings: Mapping[str, Any]) -> SpcPolicy:
    """`base` with the keys `settings` gives (already validated) laid over it."""
    changes = dict(settings)
    if changes.get("severity") is False:  # YAML 1.1 reads a bare `off` as false
        changes["severity"] = "off"
    if "metrics" in changes:
        changes["metrics"] = tuple(changes["metrics"])
    for key in ("sigma", "tolerance"):
        if key in changes:
            changes[key] = float(changes[key])
    for key in ("window", "min_history"):
        if key in changes:
            changes[key] = int(changes[key])
    return dataclasses.replace(base, **changes)


def model_spc_policy(base: SpcPolicy, settings: object, where: str) -> SpcPolicy:
    """The policy of one model: the environment's, with what its `meta.releasekit.spc`
    says laid over it. ConfigError naming `where` (the model's properties file) and the
    key when the settings are not valid."""
    if not settings:
        return base
    validator = Draft202012Validator(schema_validator("environment").schema["$defs"]["spc"])
    problems = schema_problems(settings, validator, where, ["meta", "releasekit", "spc"])
    if problems:
        raise config_error(problems)
    assert isinstance(settings, Mapping)  # the schema allows an object alone here (null is falsy)
    return spc_policy(base, settings)
