"""A live status line while dbt parses, builds and tests: one per command that runs dbt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

NodeCallback = Callable[[str, str], None]  # (unique_id, status), as releasekit.api takes it


@contextmanager
def node_progress(console: Console, label: str) -> Iterator[NodeCallback]:
    """Shows `label` and how many nodes dbt finished; yields the callback dbt reports to."""
    done: list[str] = []
    with console.status(f"{label}: parsing the project…") as status:

        def on_node(unique_id: str, node_status: str) -> None:
            done.append(unique_id)
            name = unique_id.split(".")[2] if unique_id.count(".") >= 2 else unique_id
            status.update(f"{label}: {len(done)} node(s) done, last {name[:50]} ({node_status})")

        yield on_node
