"""Statistical process control settings: layered from releasekit.yml through the
environment file to a model's own meta, each layer validated and named when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.config import load_config
from releasekit.config.model import SpcPolicy
from releasekit.config.spc import model_spc_policy
from releasekit.errors import ConfigError
from tests.support.config_files import Write


def _project(write: Write, config: str, prod: str = "") -> Path:
    return write(
        {
            "releasekit.yml": "version: 1\n" + config,
            "environments/dev.yml": "version: 1\n",
            "environments/prod.yml": "version: 1\npromotes_from: dev\n" + prod,
        }
    )


def test_defaults_warn_on_rows_nulls_and_means(write: Write) -> None:
    config = load_config(_project(write, ""), environ={})
    assert config.environment("prod").spc == SpcPolicy()
    assert SpcPolicy().severity == "warn" and SpcPolicy().min_history <= 8
    assert config.alert_webhook is None


def test_layers_merge_key_by_key_and_a_bare_off_means_off(write: Write) -> None:
    root = _project(
        write,
        "spc: {window: 20, sigma: 4}\ndefaults:\n  spc: {min_history: 5}\n"
        "alerts: {webhook: 'https://hooks.example.com/a'}\n",
        "spc:\n  severity: error\n  metrics: [row_count, newest]\n",
    )
    config = load_config(root, environ={})
    assert config.environment("prod").spc == SpcPolicy(
        severity="error", metrics=("row_count", "newest"), window=20, min_history=5, sigma=4.0
    )
    assert config.environment("dev").spc == SpcPolicy(window=20, min_history=5, sigma=4.0)
    assert config.alert_webhook == "https://hooks.example.com/a"
    off = load_config(_project(write, "spc: {severity: off}\n"), environ={})
    assert off.environment("dev").spc.severity == "off"


def test_the_webhook_variable_wins_over_the_file(write: Write) -> None:
    root = _project(write, "alerts: {webhook: 'https://a.example.com/x'}\n")
    environ = {"RELEASEKIT_ALERT_WEBHOOK": "https://b.example.com/y"}
    assert load_config(root, environ=environ).alert_webhook == "https://b.example.com/y"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("spc: {severity: loud}\n", "spc.severity"),
        ("spc: {metrics: [rows]}\n", "spc.metrics"),
        ("spc: {window: 1}\n", "spc.window"),
        ("spc: {colour: red}\n", "spc"),
        ("alerts: {webhook: 'ftp://x'}\n", "alerts.webhook"),
    ],
)
def test_invalid_settings_name_the_file_and_key(write: Write, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_project(write, text), environ={})
    assert "releasekit.yml" in str(caught.value.file or caught.value)
    assert key in str(caught.value.key or caught.value)


def test_a_bad_webhook_variable_is_refused(write: Write) -> None:
    with pytest.raises(ConfigError, match="RELEASEKIT_ALERT_WEBHOOK"):
        load_config(_project(write, ""), environ={"RELEASEKIT_ALERT_WEBHOOK": "not a url"})


def test_a_model_lays_its_own_meta_over_the_environment() -> None:
    base = SpcPolicy(window=20)
    mine = model_spc_policy(base, {"severity": "error", "sigma": 2.5}, "models/orders.yml")
    assert mine == SpcPolicy(severity="error", window=20, sigma=2.5)
    assert model_spc_policy(base, {}, "models/orders.yml") is base


def test_a_models_invalid_meta_names_its_properties_file_and_key() -> None:
    with pytest.raises(ConfigError) as caught:
        model_spc_policy(SpcPolicy(), {"severity": "panic"}, "models/orders.yml")
    assert caught.value.file == "models/orders.yml"
    assert caught.value.key == "meta.releasekit.spc.severity"
