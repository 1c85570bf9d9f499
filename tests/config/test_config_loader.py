"""load_config on valid projects: values, absolute paths and the precedence of layers."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.config import find_root, load_config
from releasekit.config.model import ProjectConfig, StateLocation
from releasekit.errors import ConfigError
from tests.support.config_files import Write


def test_full_config_loads_with_its_values(project: Path) -> None:
    config = load_config(project, environ={})
    assert config.root == project.resolve()
    assert config.dbt_project_dir == project.resolve() / "transform"
    assert config.profiles_dir == project.resolve() / "ci" / "profiles"
    assert config.profile == "shop"
    assert config.physical_schema == "rk_phys"
    assert config.state_path == project.resolve() / ".rk-state"
    assert config.environments_dir == project.resolve() / "environments"
    prod = config.environment("prod")
    assert (prod.schema, prod.target, prod.branch) == ("analytics", "prod", "prod")
    assert (prod.promotes_from, prod.retention) == ("staging", 10)
    assert dict(prod.vars) == {"region": "eu", "sample": None, "currency": "EUR"}
    assert prod.source_file == project.resolve() / "environments" / "prod.yml"


def test_paths_are_absolute(project: Path) -> None:
    config = load_config(project, environ={})
    for path in (config.root, config.dbt_project_dir, config.state_path, config.profiles_dir):
        assert path is not None and path.is_absolute()


def test_environments_come_in_promotion_order(project: Path) -> None:
    config = load_config(project, environ={})
    assert list(config.environments) == ["dev", "staging", "prod"]


def test_environment_defaults(project: Path) -> None:
    dev = load_config(project, environ={}).environment("dev")
    assert (dev.schema, dev.target, dev.promotes_from) == ("dev", None, None)
    assert dev.retention == 5  # from releasekit.yml's defaults block


def test_config_is_frozen(project: Path) -> None:
    config = load_config(project, environ={})
    with pytest.raises(AttributeError):
        config.physical_schema = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.environment("dev").vars["region"] = "us"  # type: ignore[index]
    with pytest.raises(TypeError):
        config.environments["x"] = config.environment("dev")  # type: ignore[index]


def test_minimal_config_uses_builtin_defaults(write: Write) -> None:
    root = write({"releasekit.yml": "version: 1\n", "environments/dev.yml": "version: 1\n"})
    config = load_config(root, environ={})
    assert config.dbt_project_dir == root.resolve()
    assert config.profiles_dir is None and config.profile is None
    assert config.physical_schema == "rk__physical"
    assert config.state_path == root.resolve() / ".releasekit"
    dev = config.environment("dev")
    assert (dev.schema, dev.target, dev.retention, dict(dev.vars)) == ("dev", None, 3, {})


def test_empty_sections_read_as_empty(write: Write) -> None:
    text = "version: 1\ndbt:\nstate:\ndefaults:\n"
    root = write({"releasekit.yml": text, "environments/dev.yml": "version: 1\nvars:\n"})
    assert dict(load_config(root, environ={}).environment("dev").vars) == {}


def test_custom_environments_dir(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": "version: 1\nenvironments_dir: deploy/envs\n",
            "deploy/envs/qa.yml": "version: 1\n",
        }
    )
    config = load_config(root, environ={})
    assert list(config.environments) == ["qa"]
    assert config.environments_dir == root.resolve() / "deploy" / "envs"


# --- precedence: defaults < releasekit.yml < env file < RELEASEKIT_* < overrides ----------


def _vars(config: ProjectConfig, env: str) -> dict[str, object]:
    return dict(config.environment(env).vars)


def test_vars_merge_key_by_key_through_every_layer(project: Path) -> None:
    environ = {"RELEASEKIT_VARS": '{"currency": "USD", "from_env": 1}'}
    config = load_config(project, environ=environ, overrides={"vars": {"from_env": 2, "cli": True}})
    assert _vars(config, "prod") == {
        "region": "eu",  # releasekit.yml defaults
        "sample": None,  # env file over defaults
        "currency": "USD",  # RELEASEKIT_VARS over env file
        "from_env": 2,  # overrides over RELEASEKIT_VARS
        "cli": True,
    }
    assert _vars(config, "dev") == {
        "region": "eu",
        "sample": 100,
        "currency": "USD",
        "from_env": 2,
        "cli": True,
    }


def test_vars_env_variable_accepts_yaml(project: Path) -> None:
    config = load_config(project, environ={"RELEASEKIT_VARS": "region: us"})
    assert _vars(config, "dev")["region"] == "us"


def test_target_precedence(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": "version: 1\ndefaults:\n  target: shared\n",
            "environments/dev.yml": "version: 1\n",
            "environments/prod.yml": "version: 1\ntarget: prod_target\n",
            "environments/qa.yml": "version: 1\ntarget: null\n",
        }
    )
    config = load_config(root, environ={})
    assert config.environment("dev").target == "shared"  # defaults block
    assert config.environment("prod").target == "prod_target"  # env file over defaults
    assert config.environment("qa").target is None  # an explicit null counts
    from_env = load_config(root, environ={"RELEASEKIT_TARGET": "ci"})
    assert {env.target for env in from_env.environments.values()} == {"ci"}
    from_cli = load_config(root, environ={"RELEASEKIT_TARGET": "ci"}, overrides={"target": "cli"})
    assert {env.target for env in from_cli.environments.values()} == {"cli"}


def test_state_path_precedence(project: Path) -> None:
    root = project.resolve()
    assert load_config(project, environ={}).state_path == root / ".rk-state"
    environ = {"RELEASEKIT_STATE_PATH": "from-env"}
    assert load_config(project, environ=environ).state_path == root / "from-env"
    config = load_config(project, environ=environ, overrides={"state_path": Path("/tmp/cli-state")})
    assert config.state_path == Path("/tmp/cli-state").resolve()


def test_builtin_state_path_under_root(write: Write) -> None:
    root = write({"releasekit.yml": "version: 1\n", "environments/dev.yml": "version: 1\n"})
    assert load_config(root, environ={}).state_path == root.resolve() / ".releasekit"


def test_project_settings_from_environment_variables(project: Path) -> None:
    environ = {
        "RELEASEKIT_PROJECT_DIR": "other",
        "RELEASEKIT_PROFILES_DIR": "/etc/dbt",
        "RELEASEKIT_PROFILE": "p2",
        "RELEASEKIT_PHYSICAL_SCHEMA": "rk_env",
    }
    config = load_config(project, environ=environ)
    assert config.dbt_project_dir == project.resolve() / "other"
    assert config.profiles_dir == Path("/etc/dbt").resolve()
    assert (config.profile, config.physical_schema) == ("p2", "rk_env")


def test_overrides_beat_environment_variables(project: Path) -> None:
    environ = {"RELEASEKIT_PROFILE": "from_env", "RELEASEKIT_PHYSICAL_SCHEMA": "rk_env"}
    overrides = {"profile": "from_cli", "physical_schema": "rk_cli", "project_dir": "x"}
    config = load_config(project, environ=environ, overrides=overrides)
    assert (config.profile, config.physical_schema) == ("from_cli", "rk_cli")
    assert config.dbt_project_dir == project.resolve() / "x"


def test_empty_variables_and_none_overrides_are_not_given(project: Path) -> None:
    environ = {"RELEASEKIT_PROFILE": "", "RELEASEKIT_VARS": ""}
    config = load_config(project, environ=environ, overrides={"profile": None, "target": None})
    assert config.profile == "shop"
    assert config.environment("prod").target == "prod"


def test_environ_defaults_to_process_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASEKIT_PROFILE", "from_os")
    assert load_config(project).profile == "from_os"


# --- find_root ------------------------------------------------------------------------------


def test_find_root_walks_up(project: Path) -> None:
    deep = project / "transform" / "models" / "staging"
    deep.mkdir(parents=True)
    assert find_root(deep) == project.resolve()
    assert find_root(project) == project.resolve()


def test_find_root_without_config_hints_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_root(tmp_path)
    assert "releasekit.yml" in str(caught.value)
    assert "releasekit init" in str(caught.value.hint)


# --- grants and the warehouse block ---------------------------------------------------------


def test_grants_merge_privilege_by_privilege_and_branch_environments_have_their_own(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": """\
                version: 1
                warehouse:
                  lock_timeout_ms: 250
                defaults:
                  grants: {select: [reporter], insert: [loader]}
                branch_environments:
                  grants: {select: [developer]}
                """,
            "environments/dev.yml": "version: 1\n",
            "environments/prod.yml": "version: 1\ngrants:\n  select: [reporter, bi_tool]\n",
        }
    )
    config = load_config(root, environ={})
    assert dict(config.environment("dev").grants) == {"select": ("reporter",), "insert": ("loader",)}
    prod = {"select": ("reporter", "bi_tool"), "insert": ("loader",)}
    assert dict(config.environment("prod").grants) == prod
    assert dict(config.branches.grants) == {"select": ("developer",)}
    assert config.lock_timeout_ms == 250 and config.warehouse_settings == {"lock_timeout_ms": 250}


def test_without_a_warehouse_block_the_adapter_default_stands(write: Write) -> None:
    root = write({"releasekit.yml": "version: 1\n", "environments/dev.yml": "version: 1\n"})
    config = load_config(root, environ={})
    assert config.lock_timeout_ms is None and config.warehouse_settings == {}
    assert dict(config.environment("dev").grants) == {} and dict(config.branches.grants) == {}


def test_check_policy_merges_key_by_key_over_defaults(write: Write) -> None:
    root = write(
        {
            "releasekit.yml": "version: 1\ndefaults:\n  checks: {lint: warn, allow_breaking: true}\n",
            "environments/dev.yml": "version: 1\n",
            "environments/prod.yml": "version: 1\nchecks:\n  allow_breaking: false\n  logic: off\n",
        }
    )
    config = load_config(root, environ={})
    dev, prod = config.environment("dev").checks, config.environment("prod").checks
    assert [dev.severity(c) for c in ("lint", "build", "logic", "diff")] == ["warn", "error", "error", "warn"]
    assert [prod.severity(c) for c in ("lint", "build", "logic", "diff")] == ["warn", "error", "off", "error"]


def test_state_is_local_unless_a_url_is_given(write: Write) -> None:
    root = write({"releasekit.yml": "version: 1\n", "environments/dev.yml": "version: 1\n"})
    assert load_config(root, environ={}).state == StateLocation()


def test_state_url_shorthand_and_mapping(write: Write) -> None:
    files = {"environments/dev.yml": "version: 1\n"}
    root = write({**files, "releasekit.yml": "version: 1\nstate: s3://team-bucket/analytics/rk\n"})
    assert load_config(root, environ={}).state == StateLocation(url="s3://team-bucket/analytics/rk")
    text = """\
version: 1
state:
  url: s3://team-bucket
  region: eu-west-1
  endpoint_url: http://minio:9000
  profile: analytics
  lock_ttl_seconds: 120
  path: .cache-rk
"""
    root = write({**files, "releasekit.yml": text})
    config = load_config(root, environ={})
    expected = StateLocation("s3://team-bucket", "eu-west-1", "http://minio:9000", "analytics", 120)
    assert config.state == expected
    assert config.state_path == root.resolve() / ".cache-rk"  # dbt's caches and logs stay local


def test_state_url_from_the_environment_beats_the_file(write: Write) -> None:
    files = {"environments/dev.yml": "version: 1\n", "releasekit.yml": "version: 1\nstate: s3://from-file\n"}
    root = write(files)
    config = load_config(root, environ={"RELEASEKIT_STATE_URL": "s3://from-ci/pr"})
    assert config.state.url == "s3://from-ci/pr"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state: https://bucket/x\n", "releasekit.yml:state: 'https://bucket/x' is not allowed"),
        ("state: {url: s3://Upper_Case}\n", "releasekit.yml:state.url: 's3://Upper_Case' is not allowed"),
        (
            "state: {url: s3://b-1, lock_ttl_seconds: 1}\n",
            "state.lock_ttl_seconds: must be at least 5, got 1",
        ),
        ("state: {url: s3://b-1, secret_access_key: x}\n", "state.secret_access_key: unknown key"),
    ],
)
def test_bad_state_settings_are_named(write: Write, text: str, expected: str) -> None:
    root = write({"environments/dev.yml": "version: 1\n", "releasekit.yml": f"version: 1\n{text}"})
    with pytest.raises(ConfigError) as raised:
        load_config(root, environ={})
    assert expected in str(raised.value)


def test_a_bad_state_url_in_the_environment_is_named(write: Write) -> None:
    root = write({"environments/dev.yml": "version: 1\n", "releasekit.yml": "version: 1\n"})
    expected = r"\$RELEASEKIT_STATE_URL: 'bucket/x' is not allowed\n  hint: expected an S3 URL"
    with pytest.raises(ConfigError, match=expected):
        load_config(root, environ={"RELEASEKIT_STATE_URL": "bucket/x"})
