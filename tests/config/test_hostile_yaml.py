"""YAML that PyYAML's safe_load accepts but releasekit refuses: alias bombs and duplicate
keys, in every YAML file releasekit reads itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from releasekit.config import load_config
from releasekit.config.safe_yaml import MAX_EXPANDED_NODES, SafeLoader, load_yaml
from releasekit.errors import ConfigError, ProjectError
from tests.support.cli_runs import run_cli
from tests.support.config_files import Write
from tests.support.projects import make_repo

MINIMAL = {"releasekit.yml": "version: 1\n", "environments/dev.yml": "version: 1\n"}


def _bomb(levels: int = 9) -> str:
    """Billion laughs: nine lists of nine aliases, nine deep (9**9 strings expanded)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def _config_error(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(root, environ={})
    return caught.value


def test_alias_bomb_in_releasekit_yml_is_refused_naming_file_and_line(write: Write) -> None:
    root = write({**MINIMAL, "releasekit.yml": "version: 1\n" + _bomb()})
    message = str(_config_error(root))
    assert message.startswith("releasekit.yml: invalid YAML at line ")
    assert f"aliases expand the document past {MAX_EXPANDED_NODES:,} nodes" in message
    assert "nest fewer aliases" in message


def test_the_loader_stops_counting_at_its_limit() -> None:
    """The bomb is measured, never expanded: the count stops at the limit, and a document
    just under it loads, its size counted with every alias expanded."""
    small = _bomb(levels=4)  # 9**4 strings: well under the limit
    loader = SafeLoader(small)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    assert len(data["l3"]) == 9 and data["l3"][0] is data["l2"]  # shared, as YAML means
    # root mapping + 4 keys + l0 (1 + 9) + l1 (1 + 9*10) + l2 (1 + 9*91) + l3 (1 + 9*820)
    assert loader.expanded_nodes == 1 + 4 + 10 + 91 + 820 + 7381
    with pytest.raises(yaml.YAMLError, match="alias bomb"):
        load_yaml(_bomb())


def test_anchors_and_merge_keys_still_work_for_dry_config(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": "version: 1\n",
            "environments/dev.yml": "version: 1\nvars: &shared {region: eu, sample: 100}\n",
            "environments/prod.yml": ("version: 1\nvars:\n  <<: {region: eu, sample: 100}\n  sample: null\n"),
        }
    )
    config = load_config(root, environ={})
    assert dict(config.environments["dev"].vars) == {"region": "eu", "sample": 100}
    assert dict(config.environments["prod"].vars) == {"region": "eu", "sample": None}


def test_duplicate_key_names_file_line_and_key(write: Write) -> None:
    root = write({**MINIMAL, "environments/dev.yml": "version: 1\nschema: dev\nretention: 3\nschema: prod\n"})
    message = str(_config_error(root))
    assert message.startswith("environments/dev.yml: invalid YAML at line 4, column 1: ")
    assert "key 'schema' appears twice (first at line 2)" in message
    assert "keep one of the two keys" in message


def test_duplicate_key_in_a_nested_mapping_of_releasekit_yml(write: Write) -> None:
    root = write({**MINIMAL, "releasekit.yml": "version: 1\ndefaults:\n  vars:\n    a: 1\n    a: 2\n"})
    message = str(_config_error(root))
    assert "releasekit.yml: invalid YAML at line 5, column 5: key 'a' appears twice" in message


def test_duplicate_key_in_releasekit_vars_from_the_environment(write: Write) -> None:
    root = write(MINIMAL)
    with pytest.raises(ConfigError, match="key 'a' appears twice"):
        load_config(root, environ={"RELEASEKIT_VARS": "{a: 1, a: 2}"})


def test_the_dbt_profile_is_read_with_the_same_rules(tmp_path: Path) -> None:
    from releasekit.dbtcore.profile import connection
    from releasekit.dbtcore.session import DbtSettings

    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n", encoding="utf-8")
    (tmp_path / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: a.duckdb}\n  target: prod\n",
        encoding="utf-8",
    )
    settings = DbtSettings(tmp_path, tmp_path, None, None, {}, tmp_path / "t", tmp_path / "logs")
    with pytest.raises(ProjectError, match="key 'target' appears twice"):
        connection(settings)


def test_plan_refuses_a_bomb_with_exit_2(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"releasekit.yml": "version: 1\n" + _bomb()})
    run = run_cli(repo, "plan", "dev")
    assert run.code == 2, run.text()
    assert "releasekit.yml: invalid YAML at line" in run.stderr
    assert "alias bomb" in run.stderr
