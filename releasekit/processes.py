"""Whether a process runs: the one liveness check, for lock holders and worktree holders."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a holder's liveness when it is ours to see).
    A zombie (exited, not yet reaped by its parent) no longer runs."""
    if os.name == "nt" or pid == os.getpid():
        return True  # Windows: os.kill(pid, 0) would terminate the process; assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        return status[0] != "Z"
    return True
