"""An `endpoint_url` with a password in it (`http://user:pass@minio:9000`) is used as
given but never shown: errors, `state show`, `doctor` and `state migrate` print
`http://user:***@...`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.cli_runs import Run, cli_env, run_cli
from tests.support.projects import make_repo
from tests.support.s3 import Bucket

PASSWORD = "s3cr3t-pw"


def _with_userinfo(endpoint: str) -> str:
    return endpoint.replace("http://", f"http://minio:{PASSWORD}@")


def _repo(tmp_path: Path, url: str, endpoint: str) -> Path:
    config = f"version: 1\nstate:\n  url: {url}\n  endpoint_url: {endpoint}\n"
    return make_repo(tmp_path / "repo", {"releasekit.yml": config})


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_hidden(*runs: Run) -> str:
    output = "\n".join(run.stdout + run.stderr for run in runs)
    assert PASSWORD not in output
    return output


def test_a_reachable_endpoint_is_shown_without_its_password(tmp_path: Path, bucket: Bucket) -> None:
    repo = _repo(tmp_path, bucket.url, _with_userinfo(bucket.endpoint))
    env = bucket.environ
    runs = [
        run_cli(repo, *args, env=env) for args in (["state", "show"], ["state", "show", "--json"], ["doctor"])
    ]
    assert [run.code for run in runs] == [0, 0, 0], "\n".join(run.text() for run in runs)
    output = _assert_hidden(*runs)
    assert "http://minio:***@127.0.0.1" in output


@pytest.mark.slow
def test_migrate_prints_a_switch_line_without_the_password(tmp_path: Path, bucket: Bucket) -> None:
    repo = make_repo(tmp_path / "repo")
    assert run_cli(repo, "deploy", "dev").code == 0  # something to migrate
    target = f"{bucket.url}-copy"
    run = run_cli(
        repo,
        "state",
        "migrate",
        "--to",
        target,
        "--endpoint-url",
        _with_userinfo(bucket.endpoint),
        env=bucket.environ,
    )
    assert run.code == 0, run.text()
    output = _assert_hidden(run)
    assert (
        "endpoint_url: 'http://minio:***@127.0.0.1" in output or "endpoint_url: http://minio:***@" in output
    )


def test_an_unreachable_endpoint_error_hides_the_password(tmp_path: Path, bucket: Bucket) -> None:
    endpoint = f"http://minio:{PASSWORD}@127.0.0.1:{_closed_port()}"
    repo = _repo(tmp_path, bucket.url, endpoint)
    runs = [
        run_cli(repo, *args, env=bucket.environ)
        for args in (["releases", "dev"], ["state", "show"], ["doctor"])
    ]
    assert [run.code for run in runs] == [2, 2, 2], "\n".join(run.text() for run in runs)
    output = _assert_hidden(*runs)
    assert "could not reach http://minio:***@127.0.0.1" in output


def test_a_config_error_quoting_the_endpoint_hides_the_password(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "s3://bucket/prefix", f"ftp://minio:{PASSWORD}@minio:9000")
    run = run_cli(repo, "plan", "dev", env=cli_env())
    assert run.code == 2, run.text()
    output = _assert_hidden(run)
    assert "releasekit.yml:state.endpoint_url: 'ftp://minio:***@minio:9000' is not allowed" in output
