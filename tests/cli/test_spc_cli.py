"""Statistical process control as a team runs it from CI: state on S3 (the moto server),
each run on a fresh runner (no local state), the history shared through the bucket;
`releasekit spc` prints it and draws its control chart; a held-back refresh exits 1 and
alerts a real webhook; `--accept` publishes a real change."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread

from tests.support import warehouse_reads
from tests.support.cli_runs import Run, run_cli
from tests.support.refresh_project import insert, load_raw, refresh_repo
from tests.support.s3 import Bucket
from tests.support.s3_cli import run_s3, s3_env
from tests.support.webhook import Receiver

pytestmark = pytest.mark.integration

FILES = {"releasekit.yml": "version: 1\nspc: {severity: error, min_history: 4}\n"}


@pytest.mark.slow
def test_spc_history_lives_in_the_bucket_and_gates_refreshes_from_the_command_line(
    tmp_path: Path, bucket: Bucket
) -> None:
    repo = refresh_repo(tmp_path / "repo", files=FILES)

    def execute(statement: str) -> list[tuple[Any, ...]]:
        return warehouse_reads.sql(repo, statement)

    def fresh_runner() -> None:  # a CI job starts with no local state
        shutil.rmtree(repo / ".releasekit", ignore_errors=True)

    load_raw(execute)
    assert run_s3(repo, bucket, "deploy", "dev").code == 0
    for load in range(5):
        fresh_runner()
        insert(execute, "orders", [(100 + 10 * load + i, 1 + i % 2, 20 + i) for i in range(10)])
        run = run_s3(repo, bucket, "refresh", "dev")
        assert run.code == 0, run.text()
    assert "within their limits" in run.stdout

    fresh_runner()
    overview = run_s3(repo, bucket, "spc", "dev")
    assert overview.code == 0, overview.text()
    text = " ".join(overview.stdout.split())
    assert "orders" in text and "row_count" in text and "in control" in text
    detail = run_s3(repo, bucket, "spc", "dev", "orders")
    assert detail.code == 0 and "53" in detail.stdout  # 3 first orders and 5 loads of 10

    svg, png = tmp_path / "orders.svg", tmp_path / "orders.png"
    assert run_s3(repo, bucket, "spc", "dev", "orders", "--chart", str(svg)).code == 0
    assert "dev · orders · row_count" in "".join(ElementTree.parse(svg).getroot().itertext())
    assert (
        run_s3(repo, bucket, "spc", "dev", "orders", "--metric", "mean.amount", "--chart", str(png)).code == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(png).shape[2] == 4
    wrong = run_s3(repo, bucket, "spc", "dev", "orders", "--chart", str(tmp_path / "orders.gif"))
    assert wrong.code == 2 and ".png" in wrong.stderr and "Traceback" not in wrong.stderr

    execute("delete from raw.orders where id >= 110")  # a load went wrong: most orders vanished
    receiver = Receiver()
    try:
        hook = {"RELEASEKIT_ALERT_WEBHOOK": receiver.url}
        fresh_runner()
        held = run_s3_with(repo, bucket, hook, "refresh", "dev")
        assert held.code == 1, held.text()
        said = " ".join(held.stdout.split())
        assert "held back" in said and "SPC findings" in said and "row_count" in said and "Alert sent" in said
        assert [row[0] for row in execute("select count(*) from dev.orders")] == [53]
        [request] = receiver.requests
        document = json.loads(request.body)
        assert document["outcome"] == "held" and document["findings"][0]["model"] == "orders"

        no_reason = run_s3_with(repo, bucket, hook, "refresh", "dev", "--accept", "orders")
        assert no_reason.code == 2 and "--accept needs --reason" in no_reason.stderr
        accepted = run_s3_with(
            repo,
            bucket,
            hook,
            "refresh",
            "dev",
            "--accept",
            "orders",
            "--reason",
            "orders before 110 archived",
        )
        assert accepted.code == 0, accepted.text()
        assert "accepted model.shop.orders: orders before 110 archived" in " ".join(accepted.stdout.split())
        assert len(receiver.requests) == 1  # an accepted change alerts nobody
    finally:
        receiver.close()
    assert [row[0] for row in execute("select count(*) from dev.orders")] == [13]


def run_s3_with(repo: Path, bucket: Bucket, extra: dict[str, str], *args: str) -> Run:
    """run_s3, with `extra` variables in the command's environment."""
    return run_cli(repo, *args, env={**s3_env(bucket), **extra})
