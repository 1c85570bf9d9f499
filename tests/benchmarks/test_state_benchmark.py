"""Benchmark: what keeping the state store in S3 adds to the commands people wait for,
side by side with the local state folder in one run.

Run: pytest -m benchmark -s tests/benchmarks/test_state_benchmark.py
Size: RELEASEKIT_BENCH_MODELS (default 200), RELEASEKIT_BENCH_STATE_ROWS (default 10000:
the state's cost does not grow with data), RELEASEKIT_BENCH_ROUNDS (default 5).

Two copies of one synthetic project, one with the local state folder and one with
`state: s3://...` in releasekit.yml (moto's server on loopback), each with dev (main) and
staging (promoted from dev, same parameters). Rounds interleave the two, after one
untimed warm-up round; each round times, per copy:

- `releasekit env up BRANCH` (then `env down`, untimed);
- `releasekit deploy dev` with nothing changed (a no-op);
- `releasekit promote staging` of a new dev release that builds nothing (each round commits
  a change to a last-layer model and deploys dev first, untimed), so the promotion moves
  staging's branch, switches, records and tags, reusing dev's tables.

Target (issue): S3 state adds under 0.5 s to each command (median S3 - median local).

moto answers on loopback in milliseconds; a real bucket costs a round trip (tens of
milliseconds) for every request sent after the previous one's answer. So one more round
of the S3 copy runs traced (untimed): botocore's API calls recorded in the process, from
which the table gives each command's requests by operation, the round trips they take
one after another (requests sent in parallel share one), and an estimate for a real
bucket: the added seconds with the time spent waiting on moto replaced by one round trip
each (RELEASEKIT_BENCH_S3_RTT_MS, default 30). The figures also go to
state_benchmark.json in RELEASEKIT_BENCH_OUT (default: the test's tmp_path).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from releasekit.state.base import StateStore
from releasekit.state.local import LocalStore
from tests.support.cli_runs import cli_env
from tests.support.s3 import Bucket

from .synthetic import SyntheticProject, generate_project
from .test_deploy_benchmark import BIN, MODELS, git, with_releasekit

pytestmark = pytest.mark.benchmark

ROWS = int(os.environ.get("RELEASEKIT_BENCH_STATE_ROWS", "10000"))
ROUNDS = int(os.environ.get("RELEASEKIT_BENCH_ROUNDS", "5"))
RTT = float(os.environ.get("RELEASEKIT_BENCH_S3_RTT_MS", "30")) / 1000  # a real bucket's round trip
TARGET_SECONDS = 0.5
RELEASEKIT = str(BIN / "releasekit")
ENVIRONMENTS = {
    "dev.yml": "version: 1\nschema: dev\nbranch: main\n",
    "staging.yml": "version: 1\nschema: staging\nbranch: staging\npromotes_from: dev\n",
}
ENV_UP, NOOP_DEPLOY, PROMOTE = "env up BRANCH", "deploy dev (no-op)", "promote staging (builds nothing)"

# Put first on PYTHONPATH of the traced runs only: records botocore's API calls.
TRACER = """\
import atexit, json, os, threading, time
from botocore.client import BaseClient

_calls = []
_make = BaseClient._make_api_call


def _traced(self, operation, params):
    started = time.perf_counter()
    try:
        return _make(self, operation, params)
    finally:
        _calls.append([operation, threading.get_ident(), started, time.perf_counter()])


def _write():  # one file per process: releasekit starts Python children of its own
    if _calls:
        with open(os.path.join(os.environ["RELEASEKIT_BENCH_TRACE"], f"{os.getpid()}.json"), "w") as out:
            json.dump(_calls, out)


BaseClient._make_api_call = _traced
atexit.register(_write)
"""


@dataclass(frozen=True)
class Call:
    operation: str
    thread: int
    started: float
    ended: float


def round_trips(calls: Sequence[Call]) -> int:
    """Requests made one after another: a call that starts after every earlier one ended
    waits a new round trip; calls made in parallel (the store's concurrent reads) share one."""
    count, horizon = 0, float("-inf")
    for call in sorted(calls, key=lambda call: call.started):
        if call.started >= horizon:
            count += 1
        horizon = max(horizon, call.ended)
    return count


def waiting(calls: Sequence[Call]) -> float:
    """Seconds during which at least one call was in flight."""
    total, horizon = 0.0, float("-inf")
    for call in sorted(calls, key=lambda call: call.started):
        total += max(call.ended - max(call.started, horizon), 0.0)
        horizon = max(horizon, call.ended)
    return total


# --- the two copies ----------------------------------------------------------------------


@dataclass
class Copy:
    """One copy of the project and where its state lives."""

    label: str
    project: SyntheticProject
    environ: dict[str, str]
    bucket: Bucket | None = None
    seconds: dict[str, list[float]] = field(default_factory=dict)
    traced: dict[str, list[Call]] = field(default_factory=dict)
    edits: int = 0

    @property
    def root(self) -> Path:
        return self.project.project_dir

    def store(self) -> StateStore:
        return self.bucket.store() if self.bucket is not None else LocalStore(self.root / ".releasekit")

    def run(self, *args: str, extra: Mapping[str, str] | None = None) -> float:
        started = time.perf_counter()
        result = subprocess.run(
            [RELEASEKIT, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env={**self.environ, **(extra or {})},
        )
        elapsed = time.perf_counter() - started
        assert result.returncode == 0, (
            f"{self.label}: releasekit {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        )
        return elapsed

    def new_dev_release(self) -> None:
        """A change to a model nothing reads, deployed to dev: staging has a release to promote."""
        self.edits += 1
        self.project.edit_model(self.project.layers[-1][0])
        git(self.root, "commit", "-qam", f"edit {self.edits}")
        self.run("deploy", "dev")


def make_copy(tmp_path: Path, label: str, bucket: Bucket | None) -> Copy:
    project = generate_project(tmp_path / label, models=MODELS, rows=ROWS)
    with_releasekit(project)
    for name, text in ENVIRONMENTS.items():
        (project.project_dir / "environments" / name).write_text(text)
    environ = cli_env()
    if bucket is not None:
        (project.project_dir / "releasekit.yml").write_text(f"version: 1\nstate: {bucket.url}\n")
        environ.update(bucket.environ)
    git(project.project_dir, "add", "-A")
    git(project.project_dir, "commit", "-qm", "dev and staging")
    copy = Copy(label, project, environ, bucket)
    copy.run("deploy", "dev")
    copy.run("promote", "staging")
    return copy


class Round:
    """The three commands once on a copy: timed, traced, or neither (warm-up)."""

    def __init__(self, copy: Copy, name: str, *, timed: bool = False, tracer: Path | None = None) -> None:
        self.copy, self.name, self.timed, self.tracer = copy, name, timed, tracer

    def run(self) -> None:
        branch = f"bench/state-{self.name}"
        self.command(ENV_UP, "env", "up", branch)
        self.copy.run("env", "down", branch)
        self.command(NOOP_DEPLOY, "deploy", "dev")
        self.copy.new_dev_release()
        self.command(PROMOTE, "promote", "staging", "--no-push")
        promoted = self.copy.store().entries("staging")[-1]
        assert promoted.outcome == "succeeded" and not promoted.built, f"{self.copy.label}: it built"

    def command(self, label: str, *args: str) -> None:
        if self.tracer is None:
            elapsed = self.copy.run(*args)
            if self.timed:
                self.copy.seconds.setdefault(label, []).append(elapsed)
            return
        trace = self.tracer / f"trace-{len(self.copy.traced)}"
        trace.mkdir()
        self.copy.run(*args, extra={"PYTHONPATH": str(self.tracer), "RELEASEKIT_BENCH_TRACE": str(trace)})
        rows = [row for path in trace.iterdir() for row in json.loads(path.read_text())]
        self.copy.traced[label] = [Call(*row) for row in rows]


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    command: str
    local: list[float]
    s3: list[float]
    calls: list[Call]  # the traced run's

    @property
    def added(self) -> float:
        return statistics.median(self.s3) - statistics.median(self.local)

    @property
    def estimate(self) -> float:
        return self.added - waiting(self.calls) + round_trips(self.calls) * RTT

    def line(self) -> str:
        ops = ", ".join(f"{op} {n}" for op, n in Counter(c.operation for c in self.calls).most_common())
        return (
            f"{self.command:<33} {statistics.median(self.local):>6.2f} {statistics.median(self.s3):>6.2f} "
            f"{self.added:>+6.2f} {'met' if self.added < TARGET_SECONDS else 'MISSED':>6} "
            f"{len(self.calls):>5} {round_trips(self.calls):>6} {waiting(self.calls):>6.2f} "
            f"{self.estimate:>+8.2f}  {ops}"
        )

    def figures(self) -> dict[str, Any]:
        return {
            "local_seconds": [round(s, 3) for s in self.local],
            "s3_seconds": [round(s, 3) for s in self.s3],
            "added_seconds": round(self.added, 3),
            "s3_requests": dict(Counter(call.operation for call in self.calls)),
            "s3_round_trips": round_trips(self.calls),
            "s3_waiting_seconds_on_moto": round(waiting(self.calls), 3),
            f"estimated_added_seconds_at_{RTT * 1000:g}ms": round(self.estimate, 3),
        }


def report(local: Copy, s3: Copy, ledgers: int) -> tuple[str, dict[str, Any]]:
    rows = [Row(c, local.seconds[c], s3.seconds[c], s3.traced[c]) for c in (ENV_UP, NOOP_DEPLOY, PROMOTE)]
    header = (
        f"{'command':<33} {'local':>6} {'S3':>6} {'added':>6} {'<0.5s':>6} {'reqs':>5} {'trips':>6} "
        f"{'wait':>6} {f'@{RTT * 1000:g}ms':>8}  S3 requests by operation"
    )
    lines = [
        f"S3 state vs local state: {MODELS} models, {ROWS} rows; seconds, medians of {ROUNDS} interleaved "
        f"rounds; requests from one traced run with {ledgers} environment ledgers in the bucket",
        header,
        "-" * len(header),
        *(row.line() for row in rows),
        f"trips: round trips one after another; wait: seconds spent waiting on moto; @{RTT * 1000:g}ms: "
        f"added - wait + trips x {RTT * 1000:g} ms, what a real bucket would add",
    ]
    figures = {
        "models": MODELS,
        "rows": ROWS,
        "rounds": ROUNDS,
        "environment_ledgers": ledgers,
        "commands": {row.command: row.figures() for row in rows},
    }
    return "\n".join(lines), figures


def test_s3_state_against_local_state(tmp_path: Path, bucket: Bucket) -> None:
    copies = [make_copy(tmp_path, "local", None), make_copy(tmp_path, "s3", bucket)]
    local, s3 = copies
    for number in range(ROUNDS + 1):
        for copy in copies if number % 2 else reversed(copies):
            Round(copy, str(number), timed=number > 0).run()
    tracer = tmp_path / "tracer"
    tracer.mkdir()
    (tracer / "sitecustomize.py").write_text(TRACER)
    Round(s3, "traced", tracer=tracer).run()

    text, figures = report(local, s3, ledgers=len(bucket.store().environments()))
    print("\n" + text)
    (Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "state_benchmark.json").write_text(
        json.dumps(figures, indent=2)
    )
