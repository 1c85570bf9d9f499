"""Deploying through the API while recording what dbt actually ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from releasekit import api
from releasekit.api import DeployResult, Workspace


def names(ids: tuple[str, ...] | list[str] | set[str]) -> set[str]:
    return {unique_id.split(".")[-1] for unique_id in ids}


@dataclass
class Ran:
    """What dbt executed during a deploy, from its NodeFinished events."""

    nodes: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, unique_id: str, status: str) -> None:
        self.nodes.append((unique_id, status))

    @property
    def built(self) -> set[str]:
        return {uid.split(".")[-1] for uid, _ in self.nodes if uid.split(".")[0] in ("model", "seed")}


def deploy(workspace: Workspace, env: str | None = None, **kwargs: Any) -> tuple[DeployResult, Ran]:
    ran = Ran()
    return api.deploy(workspace, env, on_node=ran, **kwargs), ran
