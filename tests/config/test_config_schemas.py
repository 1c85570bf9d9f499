"""The published JSON Schemas and the reference environment files."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from releasekit.config import load_config
from releasekit.config.model import DEFAULT_PHYSICAL_SCHEMA, DEFAULT_RETENTION

REFERENCE = Path(__file__).resolve().parents[2] / "environments"
SCHEMAS = ("releasekit", "environment")


def _schema(name: str) -> dict[str, object]:
    text = (files("releasekit.config") / "schemas" / f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, object] = json.loads(text)
    return schema


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(_schema(name))


def test_schema_documents_the_builtin_defaults() -> None:
    text = json.dumps(_schema("releasekit"))
    assert DEFAULT_PHYSICAL_SCHEMA in text and f"Default: {DEFAULT_RETENTION}" in text


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_reference_environment_files_validate(name: str) -> None:
    document = yaml.safe_load((REFERENCE / f"{name}.yml").read_text())
    assert list(Draft202012Validator(_schema("environment")).iter_errors(document)) == []
    assert document["schema"] == name and document["vars"] == {}


def test_reference_environment_files_load(tmp_path: Path) -> None:
    shutil.copytree(REFERENCE, tmp_path / "environments")
    (tmp_path / "releasekit.yml").write_text("version: 1\n")
    config = load_config(tmp_path, environ={})
    chain = [(env.name, env.branch, env.promotes_from) for env in config.environments.values()]
    assert chain == [
        ("dev", "main", None),
        ("staging", "staging", "dev"),
        ("prod", "prod", "staging"),
    ]
    assert all(env.target is None for env in config.environments.values())


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_reference_files_explain_every_key(name: str) -> None:
    text = (REFERENCE / f"{name}.yml").read_text()
    header = "".join(line for line in text.splitlines() if line.startswith("#"))
    for key in _schema("environment")["properties"]:  # type: ignore[attr-defined]
        assert key in header
