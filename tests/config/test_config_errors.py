"""load_config on broken projects: every problem located by file and key, with a fix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from releasekit.config import load_config
from releasekit.errors import ConfigError
from tests.support.config_files import CONFIG, ENVIRONMENTS, Write

MINIMAL = {"releasekit.yml": "version: 1\n", "environments/dev.yml": "version: 1\n"}


def _error(
    root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(root, environ=environ or {}, overrides=overrides)
    return caught.value


def test_unknown_key_names_file_and_key_path(write: Write) -> None:
    root = write({**MINIMAL, "releasekit.yml": "version: 1\ndbt:\n  projectdir: x\n"})
    error = _error(root)
    assert error.file == "releasekit.yml" and error.key == "dbt.projectdir"
    assert str(error).startswith("releasekit.yml:dbt.projectdir: unknown key (did you mean 'project_dir'?)")
    assert "remove it or check its spelling; allowed keys: project_dir, profiles_dir, profile" in str(error)


def test_unknown_key_in_environment_file(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "version: 1\ngates: []\n"})
    assert str(_error(root)).startswith("environments/dev.yml:gates: unknown key")


def test_wrong_type_names_expected_type(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "version: 1\nretention: many\n"})
    error = _error(root)
    assert str(error).startswith("environments/dev.yml:retention: wrong type: got a string")
    assert error.hint == "expected an integer"


def test_several_errors_are_reported_together(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": "version: 1\nphysical_schema: [a]\nstate:\n  path: 3\n  color: red\n",
            "environments/dev.yml": "version: 1\nretention: 0\nbranch: [main]\n",
            "environments/prod.yml": "version: 1\nschema: 'has space'\nvars: [1]\n",
        }
    )
    message = str(_error(root))
    assert message.startswith("3 problems in the releasekit configuration:")
    for line in (
        "releasekit.yml:physical_schema: wrong type: got a list",
        "releasekit.yml:state.color: unknown key",
        "releasekit.yml:state.path: wrong type: got an integer (3)",
    ):
        assert line in message
    root.joinpath("releasekit.yml").write_text("version: 1\n")
    message = str(_error(root))
    assert message.startswith("4 problems in the releasekit configuration:")
    for line in (
        "environments/dev.yml:branch: wrong type: got a list",
        "environments/dev.yml:retention: must be at least 1, got 0",
        "environments/prod.yml:schema: 'has space' is not allowed",
        "environments/prod.yml:vars: wrong type: got a list",
    ):
        assert line in message
    assert "hint: expected a mapping or null" in message


def test_bad_yaml_names_file_and_line(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "version: 1\nvars:\n  a: 1\n b: 2\n"})
    error = _error(root)
    assert error.file == "environments/dev.yml"
    assert "invalid YAML at line 4" in str(error)


def test_bad_yaml_in_releasekit_yml(write: Write) -> None:
    root = write({**MINIMAL, "releasekit.yml": "version: 1\ndbt: {project_dir: x\n"})
    error = _error(root)
    assert error.file == "releasekit.yml" and "invalid YAML at line" in str(error)


@pytest.mark.parametrize("file", ["releasekit.yml", "environments/dev.yml"])
def test_unknown_version_is_rejected(write: Write, file: str) -> None:
    root = write({**MINIMAL, file: "version: 2\n"})
    error = _error(root)
    assert str(error).startswith(f"{file}:version: unsupported version 2")
    assert error.hint is not None and "version 1" in error.hint


def test_missing_version_is_reported(write: Write) -> None:
    root = write({**MINIMAL, "releasekit.yml": "physical_schema: rk\n"})
    error = _error(root)
    assert (error.file, error.key) == ("releasekit.yml", "version")
    assert error.hint is not None and "version: 1" in error.hint


def test_empty_file_needs_a_version(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": ""})
    assert (_error(root).file, _error(root).key) == ("environments/dev.yml", "version")


def test_document_must_be_a_mapping(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "- version: 1\n"})
    error = _error(root)
    assert str(error).startswith("environments/dev.yml: wrong type: got a list")
    assert error.hint == "expected a mapping"


def test_bad_environment_name(write: Write) -> None:
    root = write({**MINIMAL, "environments/my env.yml": "version: 1\n"})
    error = _error(root)
    assert error.file == "environments/my env.yml"
    assert "'my env' is not a valid environment name" in str(error)
    assert error.hint is not None and "rename the file" in error.hint


def test_same_environment_in_yml_and_yaml(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yaml": "version: 1\n"})
    assert "also declared in environments/dev.yaml" in str(_error(root))


def test_duplicate_consumer_schema(write: Write) -> None:
    root = write({**MINIMAL, "environments/qa.yml": "version: 1\nschema: DEV\n"})
    error = _error(root)
    assert (error.file, error.key) == ("environments/qa.yml", "schema")
    assert "consumer schema 'DEV' is already environment 'dev''s schema" in str(error)


def test_consumer_schema_must_not_be_the_physical_schema(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "version: 1\nschema: rk__physical\n"})
    error = _error(root)
    assert (error.file, error.key) == ("environments/dev.yml", "schema")
    assert "is the physical schema" in str(error)


def test_physical_schema_from_overrides_is_checked_against_environments(write: Write) -> None:
    error = _error(write(MINIMAL), overrides={"physical_schema": "dev"})
    assert "consumer schema 'dev' is the physical schema" in str(error)


def test_promotes_from_unknown_environment(write: Write) -> None:
    root = write({**MINIMAL, "environments/prod.yml": "version: 1\npromotes_from: staging\n"})
    error = _error(root)
    assert (error.file, error.key) == ("environments/prod.yml", "promotes_from")
    assert "'staging' is not a declared environment" in str(error)
    assert error.hint is not None and "declared environments: dev, prod" in error.hint


def test_promotion_cycle_names_the_chain(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": "version: 1\n",
            "environments/dev.yml": "version: 1\npromotes_from: prod\n",
            "environments/staging.yml": "version: 1\npromotes_from: dev\n",
            "environments/prod.yml": "version: 1\npromotes_from: staging\n",
            "environments/qa.yml": "version: 1\npromotes_from: dev\n",
        }
    )
    error = _error(root)
    assert "promotion chain has a cycle: dev -> staging -> prod -> dev" in str(error)
    assert str(error).count("cycle") == 1


def test_self_promotion_is_a_cycle(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "version: 1\npromotes_from: dev\n"})
    assert "cycle: dev -> dev" in str(_error(root))


def test_missing_releasekit_yml_hints_init(tmp_path: Path) -> None:
    error = _error(tmp_path)
    assert "no releasekit.yml" in str(error)
    assert error.hint is not None and "releasekit init" in error.hint


def test_missing_environments_folder_hints_init(write: Write) -> None:
    error = _error(write({"releasekit.yml": "version: 1\n"}))
    assert (error.file, str(error).splitlines()[0]) == (
        "environments",
        "environments: folder does not exist",
    )
    assert error.hint is not None and "releasekit init" in error.hint


def test_empty_environments_folder_hints_init(write: Write) -> None:
    root = write({"releasekit.yml": "version: 1\n", "environments/README.md": "hi"})
    error = _error(root)
    assert error.file == "environments" and "holds no <name>.yml files" in str(error)
    assert error.hint is not None and "releasekit init" in error.hint


def test_bad_vars_variable_is_reported(write: Write) -> None:
    error = _error(write(MINIMAL), environ={"RELEASEKIT_VARS": "[1, 2]"})
    assert str(error).startswith("$RELEASEKIT_VARS: wrong type: got a list")


def test_unparsable_vars_variable_is_reported(write: Write) -> None:
    error = _error(write(MINIMAL), environ={"RELEASEKIT_VARS": "{a: 1"})
    assert error.file == "$RELEASEKIT_VARS" and "invalid YAML" in str(error)


def test_bad_physical_schema_variable_is_reported(write: Write) -> None:
    error = _error(write(MINIMAL), environ={"RELEASEKIT_PHYSICAL_SCHEMA": 'rk"; drop'})
    assert error.file == "$RELEASEKIT_PHYSICAL_SCHEMA" and "is not allowed" in str(error)


def test_bad_override_is_reported(write: Write) -> None:
    error = _error(write(MINIMAL), overrides={"vars": "a=1", "colour": "red"})
    message = str(error)
    assert "command line:colour: unknown override" in message
    assert "command line:vars: wrong type: got a string" in message


def test_errors_in_command_layers_and_files_come_together(write: Write) -> None:
    root = write({**ENVIRONMENTS, "releasekit.yml": CONFIG + "colour: red\n"})
    message = str(_error(root, overrides={"target": 5}))
    assert "command line:target: wrong type: got an integer (5)" in message
    assert "releasekit.yml:colour: unknown key" in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("version: 1\nwarehouse:\n  lock_timeout_ms: 0\n", "releasekit.yml:warehouse.lock_timeout_ms"),
        ("version: 1\nwarehouse:\n  lock_timeout: 300\n", "releasekit.yml:warehouse.lock_timeout"),
        ("version: 1\ndefaults:\n  grants: {read: [x]}\n", "releasekit.yml:defaults.grants"),
        ("version: 1\ndefaults:\n  grants: {select: reporter}\n", "releasekit.yml:defaults.grants.select"),
    ],
)
def test_bad_warehouse_settings_and_grants_name_the_key(write: Write, text: str, where: str) -> None:
    root = write({**MINIMAL, "releasekit.yml": text})
    assert str(_error(root)).startswith(where), str(_error(root))
