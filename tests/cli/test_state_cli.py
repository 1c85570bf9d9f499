"""`releasekit state show`, `state migrate` and `doctor` as users run them, on the state a
real DuckDB deploy leaves (a ledger, a branch environment, a check record, a parsed graph),
with S3 served by moto over HTTP. After a migrate, the commands that read state say the same
from the bucket as they said from the folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
from filelock import FileLock

from releasekit.state.base import STATE_AREAS
from releasekit.state.local import LocalStore
from releasekit.state.migrate import copy_order, migrate
from tests.support.cli_runs import Run, run_cli
from tests.support.projects import make_repo
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, SESSION_TOKEN, Bucket

pytestmark = pytest.mark.integration


def rk(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> Run:
    return run_cli(repo, *args, env=env)


def said(run: Run) -> str:
    """Both streams with rich's line wrapping undone."""
    return " ".join((run.stdout + run.stderr).split())


def state_files(repo: Path) -> dict[str, bytes]:
    """The state documents and lock records of a local state (not dbt's caches and logs)."""
    root = repo / ".releasekit"
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for area in (*STATE_AREAS, "locks")
        for path in sorted((root / area).rglob("*"))
        if path.is_file()
    }


def documents(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """What a migrate copies of `state_files`: not lock records, not append locks."""
    return {
        key: data
        for key, data in files.items()
        if not key.startswith("locks/") and not key.endswith("/append.lock")
    }


def bucket_documents(bucket: Bucket) -> dict[str, bytes]:
    stored = bucket.keys()
    return {
        key.removeprefix(f"{bucket.prefix}/"): bucket.read(key.removeprefix(f"{bucket.prefix}/"))
        for key in stored
    }


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A repository whose local state a real deploy of dev, a branch environment and a
    check of it made, made once per test session (xdist workers share it: the pattern of
    pytest-xdist's docs). Tests work on copies."""
    if worker_id == "master":
        return _deploy(tmp_path_factory.mktemp("deployed") / "repo")
    shared = tmp_path_factory.getbasetemp().parent  # this session's, every worker's
    with FileLock(shared / "state-cli-deployed.lock"):
        repo = shared / "state-cli-deployed" / "repo"
        return repo if (repo.parent / "done").exists() else _deploy(repo)


def _deploy(repo: Path) -> Path:
    make_repo(repo)
    for args in (
        ["deploy", "dev"],
        ["env", "up", "feature/x"],
        ["check", "--env", "feature/x", "--only", "lint,logic"],
    ):
        run = run_cli(repo, *args)
        assert run.code == 0, run.text()
    (repo.parent / "done").touch()
    return repo


@pytest.fixture
def repo(deployed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(deployed, tmp_path / "repo", symlinks=True))


def test_state_show_on_a_folder(repo: Path) -> None:
    run = run_cli(repo, "state", "show")

    assert run.code == 0, run.text()
    text = said(run)
    assert f"State: {repo / '.releasekit'} (a local folder)" in text
    assert "dev 2 1" in text and "feature/x 2 1" in text  # ledger entries, live release
    assert "Branch environments registered: 1 feature/x (schema br_feature_x" in text
    assert "Commits with check records: 1 (1 records)" in text
    assert "Artifacts: 1 (" in text and "Locks: none held" in text

    shown = json.loads(run_cli(repo, "state", "show", "--json").stdout)
    assert shown["kind"] == "folder" and shown["where"] == str(repo / ".releasekit")
    assert shown["environments"] == [
        {"name": "dev", "entries": 2, "live_release": 1, "branch": False},
        {"name": "feature/x", "entries": 2, "live_release": 1, "branch": True},
    ]
    assert [branch["branch"] for branch in shown["branches"]] == ["feature/x"]
    assert shown["artifacts"] == 1 and shown["artifact_bytes"] > 1000


@pytest.mark.slow
def test_migrate_to_a_bucket_then_every_command_reads_the_same_from_it(repo: Path, bucket: Bucket) -> None:
    before = {args: run_cli(repo, *args) for args in (("releases", "dev"), ("status",))}
    assert all(run.code == 0 for run in before.values())
    files = state_files(repo)

    run = run_cli(repo, "state", "migrate", "--to", bucket.url)

    assert run.code == 0, run.text()
    copied = documents(files)
    assert f"copied {len(copied)} documents" in said(run)
    assert f"{len(copied)} verified" in said(run)
    assert f"state: {bucket.url}" in run.stdout.splitlines()[-2]  # the line to put in releasekit.yml
    assert bucket_documents(bucket) == copied  # byte for byte, locks not copied
    assert state_files(repo) == files  # the source was only read

    on_s3 = {"RELEASEKIT_STATE_URL": bucket.url}
    for args, earlier in before.items():
        now = rk(repo, *args, env=on_s3)
        assert now.code == 0, now.text()
        assert now.stdout == earlier.stdout, args
    show = rk(repo, "state", "show", env=on_s3)
    assert f"State: {bucket.url} (S3, lock time to live 60 s)" in said(show)
    assert "dev 2 1" in said(show) and "Commits with check records: 1 (1 records)" in said(show)


def test_the_printed_line_switches_the_project_to_the_bucket(repo: Path, bucket: Bucket) -> None:
    run = run_cli(
        repo, "state", "migrate", "--to", bucket.url, "--endpoint-url", bucket.endpoint, "--region", REGION
    )
    assert run.code == 0, run.text()
    line = run.stdout.splitlines()[-2].strip()
    assert line == f"state: {{url: '{bucket.url}', region: {REGION}, endpoint_url: '{bucket.endpoint}'}}"

    with (repo / "releasekit.yml").open("a", encoding="utf-8") as config:
        config.write(line + "\n")
    shutil.rmtree(repo / ".releasekit" / "ledger")  # so only the bucket can answer

    show = run_cli(repo, "state", "show")
    assert show.code == 0, show.text()
    assert f"State: {bucket.url} (S3, region {REGION}, endpoint {bucket.endpoint}" in said(show)
    assert "dev 2 1" in said(show)
    for secret in (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in run.stdout + run.stderr + show.stdout + show.stderr


def test_migrate_from_a_bucket_back_to_a_folder(repo: Path, bucket: Bucket) -> None:
    files = state_files(repo)
    migrate(LocalStore(repo / ".releasekit"), bucket.store(), "")
    in_bucket = bucket_documents(bucket)

    run = rk(repo, "state", "migrate", "--to", "restored", env={"RELEASEKIT_STATE_URL": bucket.url})

    assert run.code == 0, run.text()
    assert "state: {path: restored}" in run.stdout
    restored = repo / "restored"
    copied = {p.relative_to(restored).as_posix(): p.read_bytes() for p in restored.rglob("*") if p.is_file()}
    assert copied == documents(files)
    assert bucket_documents(bucket) == in_bucket
    with (repo / "releasekit.yml").open("a", encoding="utf-8") as config:
        config.write("state: {path: restored}\n")  # the line it printed
    show = run_cli(repo, "state", "show")
    assert show.code == 0, show.text()
    assert f"State: {restored} (a local folder)" in said(show) and "dev 2 1" in said(show)


def test_a_rerun_after_a_partial_copy_completes_it(repo: Path, bucket: Bucket) -> None:
    local = LocalStore(repo / ".releasekit")
    keys = sorted(local.object_keys(), key=copy_order)
    store = bucket.store()
    for key in keys[:3]:
        store.create_object(key, local.read_object(key) or b"")

    run = run_cli(repo, "state", "migrate", "--to", bucket.url)

    assert run.code == 0, run.text()
    assert f"copied {len(keys) - 3} documents" in said(run)
    assert "3 already there with the same bytes" in said(run)
    assert sorted(bucket_documents(bucket)) == sorted(keys)


def test_a_conflicting_destination_is_refused_and_nothing_copied(repo: Path, bucket: Bucket) -> None:
    bucket.write("ledger/dev/00000001.json", b"{}\n")

    run = run_cli(repo, "state", "migrate", "--to", bucket.url)

    assert run.code == 2, run.text()
    assert f"{bucket.url}/ledger/dev/00000001.json" in said(run)
    assert "differ from the source; nothing was copied" in said(run)
    assert bucket.keys() == [f"{bucket.prefix}/ledger/dev/00000001.json"]


def test_a_held_lock_at_the_source_is_refused_and_nothing_copied(repo: Path, bucket: Bucket) -> None:
    with LocalStore(repo / ".releasekit").lock("dev", owner="deploy dev by ci-runner-7") as held:
        run = run_cli(repo, "state", "migrate", "--to", bucket.url)

    assert run.code == 2, run.text()
    assert "while a lock is held there" in said(run)
    assert "held: dev by deploy dev by ci-runner-7" in said(run)
    assert f"lock id {held.id}" in said(run)
    assert bucket.keys() == []


def test_doctor_passes_on_a_healthy_folder_and_bucket(repo: Path, bucket: Bucket) -> None:
    files = state_files(repo)
    run = run_cli(repo, "doctor")
    assert run.code == 0, run.text()
    assert "All checks passed." in run.stdout
    assert state_files(repo) == files

    migrate(LocalStore(repo / ".releasekit"), bucket.store(), "")
    objects = bucket_documents(bucket)
    run = rk(repo, "doctor", env={"RELEASEKIT_STATE_URL": bucket.url})
    assert run.code == 0, run.text()
    for name in ("conditional create", "compare-and-swap", "delete", "documents", "locks"):
        assert f"✔ {name}:" in run.stdout
    assert bucket_documents(bucket) == objects


def test_doctor_names_corrupt_and_unknown_version_objects_and_leaves_them(repo: Path, bucket: Bucket) -> None:
    migrate(LocalStore(repo / ".releasekit"), bucket.store(), "")
    newer = json.loads(bucket.read("ledger/dev/00000002.json"))
    newer["format"] = "releasekit.ledger/2"
    bucket.write("ledger/dev/00000001.json", b"\x00garbage")
    bucket.write("ledger/dev/00000002.json", json.dumps(newer).encode())
    objects = bucket_documents(bucket)

    run = rk(repo, "doctor", env={"RELEASEKIT_STATE_URL": bucket.url})

    assert run.code == 2, run.text()
    assert "✘ documents:" in run.stdout
    assert f"{bucket.url}/ledger/dev/00000001.json: not valid JSON" in said(run)
    assert f"{bucket.url}/ledger/dev/00000002.json: ledger format 'releasekit.ledger/2' is not one" in said(
        run
    )
    assert "upgrade" in said(run)
    assert bucket_documents(bucket) == objects


def test_doctor_fails_clearly_without_a_bucket_or_an_endpoint(tmp_path: Path, bucket: Bucket) -> None:
    repo = make_repo(tmp_path / "fresh")

    run = rk(repo, "doctor", env={"RELEASEKIT_STATE_URL": "s3://rk-no-such-bucket-7f3a/team"})
    assert run.code == 2, run.text()
    assert "✘ state store: S3 ListObjectsV2 of s3://rk-no-such-bucket-7f3a/team" in said(run)
    assert "NoSuchBucket" in said(run) and "create the bucket 'rk-no-such-bucket-7f3a'" in said(run)

    unreachable = {"RELEASEKIT_STATE_URL": bucket.url, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}
    run = rk(repo, "doctor", env=unreachable)
    assert run.code == 2, run.text()
    assert "could not reach" in said(run)

    run = rk(tmp_path, "doctor")  # no releasekit.yml here or above
    assert run.code == 2, run.text()
    assert "✘ config: no releasekit.yml in" in said(run)
