"""The real `releasekit` command over S3 state, as CI jobs run it: the state URL and the AWS
chain (the moto server's fake credentials) in the child's environment, nothing else of
releasekit's; and a child process holding environments' leases, to be refused by, killed
and cleared.

Run as a script (`python s3_cli.py hold URL TTL OWNER ENV...`) it is that lease holder: it
prints `locked ENV LOCK_ID` per lease, then sleeps, renewing them, until killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.cli_runs import RELEASEKIT, Run, cli_env, run_cli
from tests.support.s3 import Bucket

GIVE_UP_SECONDS = 120.0  # a holder whose test died stops on its own


def s3_env(bucket: Bucket, *, state_url: bool = True) -> dict[str, str]:
    """cli_env() plus what a CI job sets: the bucket's AWS chain and RELEASEKIT_STATE_URL
    (left out when the repository's releasekit.yml names the bucket itself)."""
    environ = {**cli_env(), **bucket.environ}
    if state_url:
        environ["RELEASEKIT_STATE_URL"] = bucket.url
    return environ


def run_s3(repo: Path, bucket: Bucket, *args: str, state_url: bool = True, timeout: float = 180) -> Run:
    run = run_cli(repo, *args, timeout=timeout, env=s3_env(bucket, state_url=state_url))
    print(f"releasekit {' '.join(args)} in {repo.name}: exit {run.code} in {run.seconds:.2f} s")
    assert "hit a bug" not in run.stderr, run.text()  # exit 3 with a crash log
    return run


def ok_s3(repo: Path, bucket: Bucket, *args: str, state_url: bool = True) -> str:
    """stdout of a run that must succeed, rich's line wrapping undone."""
    run = run_s3(repo, bucket, *args, state_url=state_url)
    assert run.code == 0, run.text()
    return " ".join(run.stdout.split())


def launch_s3(
    repo: Path, bucket: Bucket, *args: str, out: IO[str], state_url: bool = True
) -> subprocess.Popen[str]:
    """`releasekit *args` started in its own process group (killable with what it runs)."""
    return subprocess.Popen(
        [RELEASEKIT, *args],
        cwd=repo,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=s3_env(bucket, state_url=state_url),
        text=True,
        start_new_session=True,
    )


def said(run: Run) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(run.stderr.split())


@dataclass(frozen=True)
class Holder:
    process: subprocess.Popen[str]
    ids: Mapping[str, str]  # env -> the id of the lease held on it

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, the leases stay in the bucket as a dead CI runner leaves them."""
        self.process.kill()
        self.process.wait()


@contextmanager
def lease_holder(bucket: Bucket, owner: str, *envs: str, ttl: float = 60.0) -> Iterator[Holder]:
    """A child process holding a lease on each of `envs` through ObjectStateStore."""
    checkout = Path(__file__).resolve().parents[2]  # the child imports tests.support from it
    environ = {**os.environ, **bucket.environ, "PYTHONPATH": str(checkout)}
    child = subprocess.Popen(
        [sys.executable, __file__, "hold", bucket.url, str(ttl), owner, *envs],
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ids = {}
        for _ in envs:
            word, env, lock_id = child.stdout.readline().split()
            assert word == "locked", word
            ids[env] = lock_id
        yield Holder(child, ids)
    finally:
        child.kill()
        child.wait()


def hold(url: str, ttl: float, owner: str, envs: list[str]) -> None:
    from contextlib import ExitStack

    from releasekit.state.remote import ObjectStateStore
    from releasekit.state.s3 import S3Objects

    store = ObjectStateStore(S3Objects(url), lock_ttl=ttl)
    with ExitStack() as held:
        for env in envs:
            info = held.enter_context(store.lock(env, owner=owner, timeout=0))
            print(f"locked {env} {info.id}", flush=True)
        time.sleep(GIVE_UP_SECONDS)


if __name__ == "__main__":
    command, url, ttl, owner, *names = sys.argv[1:]
    if command != "hold" or not names:
        raise SystemExit("usage: s3_cli.py hold URL TTL OWNER ENV...")
    hold(url, float(ttl), owner, names)
