"""init_project: a working starting point, written all at once or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from releasekit.config import init_project, load_config
from releasekit.config.scaffold import reference_environments
from releasekit.errors import ConfigError

FILES = (
    "releasekit.yml",
    "environments/dev.yml",
    "environments/staging.yml",
    "environments/prod.yml",
)


def _init(root: Path, targets: tuple[str, ...] = ("dev",), force: bool = False) -> object:
    return init_project(root, dbt_project_dir=root, target_names=targets, default_target="dev", force=force)


def test_writes_every_file_and_they_load(tmp_path: Path) -> None:
    result = init_project(
        tmp_path, dbt_project_dir=Path("transform"), target_names=["dev"], default_target="dev"
    )
    root = tmp_path.resolve()
    assert result.written == (*(root / name for name in FILES), root / ".gitignore")
    assert result.skipped == ()
    config = load_config(tmp_path, environ={})
    assert config.dbt_project_dir == root / "transform"
    assert list(config.environments) == ["dev", "staging", "prod"]
    assert [env.promotes_from for env in config.environments.values()] == [None, "dev", "staging"]
    assert [env.branch for env in config.environments.values()] == ["main", "staging", "prod"]


def test_project_dir_is_written_relative_to_root(tmp_path: Path) -> None:
    init_project(tmp_path, dbt_project_dir=tmp_path / "dbt project", target_names=[], default_target="dev")
    text = (tmp_path / "releasekit.yml").read_text()
    assert yaml.safe_load(text)["dbt"]["project_dir"] == "dbt project"
    assert "# profiles_dir: null" in text  # commented keys for discoverability


def test_single_target_means_every_environment_uses_the_default(tmp_path: Path) -> None:
    _init(tmp_path, targets=("dev",))
    config = load_config(tmp_path, environ={})
    assert config.environment("dev").target == "dev"
    assert config.environment("staging").target is None
    assert config.environment("prod").target is None
    prod = (tmp_path / "environments" / "prod.yml").read_text()
    assert 'target: null  # null: the profile\'s default target ("dev")' in prod


def test_targets_named_after_environments_are_used(tmp_path: Path) -> None:
    _init(tmp_path, targets=("ci", "prod"))
    config = load_config(tmp_path, environ={})
    assert config.environment("prod").target == "prod"
    assert config.environment("dev").target is None
    assert (
        'target: prod  # the profile\'s target named "prod"'
        in (tmp_path / "environments/prod.yml").read_text()
    )


def test_gitignore_gets_the_state_folder_once(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("target/\n*.duckdb")
    _init(tmp_path)
    assert (tmp_path / ".gitignore").read_text() == "target/\n*.duckdb\n.releasekit/\n"
    result = init_project(
        tmp_path, dbt_project_dir=tmp_path, target_names=[], default_target="dev", force=True
    )
    assert (tmp_path / ".gitignore").read_text() == "target/\n*.duckdb\n.releasekit/\n"
    assert result.skipped == (tmp_path.resolve() / ".gitignore",)


def test_gitignore_is_created_when_absent(tmp_path: Path) -> None:
    _init(tmp_path)
    assert (tmp_path / ".gitignore").read_text() == ".releasekit/\n"


def test_gitignore_with_an_equivalent_line_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_bytes(b"/.releasekit\r\n")
    _init(tmp_path)
    assert (tmp_path / ".gitignore").read_bytes() == b"/.releasekit\r\n"


def test_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yml").write_text("mine\n")
    with pytest.raises(ConfigError) as caught:
        _init(tmp_path)
    assert "environments/prod.yml" in str(caught.value)
    assert caught.value.hint is not None and "--force" in caught.value.hint
    assert not (tmp_path / "releasekit.yml").exists()
    assert not (tmp_path / ".gitignore").exists()
    assert sorted(p.name for p in (tmp_path / "environments").iterdir()) == ["prod.yml"]
    assert (tmp_path / "environments" / "prod.yml").read_text() == "mine\n"


def test_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "releasekit.yml").write_text("version: 1\nphysical_schema: old\n")
    _init(tmp_path, force=True)
    assert load_config(tmp_path, environ={}).physical_schema == "rk__physical"


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _init(tmp_path / "missing")


def test_reference_environments_are_found() -> None:
    names = sorted(entry.name for entry in reference_environments().iterdir())
    assert names == ["dev.yml", "prod.yml", "staging.yml"]
