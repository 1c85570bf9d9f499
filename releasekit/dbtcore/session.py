"""Running dbt in-process: parse once, build into releasekit's physical names.

dbt is imported in this package only, and inside the functions that use it: its import
alone takes seconds, and commands that run no dbt (`releases`) should not pay for it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from releasekit.config.safe_yaml import load_yaml
from releasekit.config.secrets import Redactor
from releasekit.dbtcore.translate import to_graph
from releasekit.errors import ProjectError
from releasekit.graph import ProjectGraph

# dbt keeps global state (flags, adapters, invocation context): one invocation at a time.
_DBT_LOCK = threading.Lock()
_FAILED = frozenset({"error", "fail", "skipped", "runtime error"})


@dataclass(frozen=True)
class DbtSettings:
    project_dir: Path
    profiles_dir: Path | None
    profile: str | None
    target: str | None
    vars: Mapping[str, Any]
    target_path: Path  # dbt's artifacts and partial-parse state for this parameter set
    log_path: Path
    # Where dbt runs, so relative paths in the profile (a DuckDB file) resolve: the user's
    # project folder, also when the project is read from a temporary worktree.
    working_dir: Path | None = None

    @property
    def cwd(self) -> Path:
        return self.working_dir or self.project_dir


@dataclass(frozen=True)
class Placement:
    schema: str
    alias: str


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    resource_type: str
    status: str
    message: str
    failures: int | None = None
    seconds: float = 0.0
    path: str = ""  # the node's file, relative to the dbt project

    @property
    def ok(self) -> bool:
        return self.status not in _FAILED


@dataclass(frozen=True)
class ParsedProject:
    graph: ProjectGraph
    manifest: Any = field(repr=False)  # dbt's Manifest; opaque outside this package


NodeCallback = Callable[[str, str], None]  # (unique_id, status)


class DbtProject:
    """One dbt project under one target and one set of vars."""

    def __init__(self, settings: DbtSettings, *, on_node: NodeCallback | None = None) -> None:
        self.settings = settings
        self._on_node = on_node

    def redactor(self, graph: ProjectGraph | None = None) -> Redactor:
        """Hides the values of the env vars the project (`graph`) and its profile read, as
        dbt saw them, from dbt's messages: a failure can quote rendered SQL."""
        from releasekit.dbtcore.profile import profile_env_var_names  # profile imports this module

        names = profile_env_var_names(self.settings) | (graph.env_var_names() if graph else frozenset())
        return Redactor.of(names, os.environ)

    def parse(self) -> ParsedProject:
        result = self._invoke(["parse"])
        if not result.success or result.result is None:
            _refuse_unwritable(result)
            raise ProjectError(
                f"dbt could not parse the project in {self.settings.project_dir}: "
                f"{self.redactor()(_why(result))}",
                hint=f"run `dbt parse` in {self.settings.project_dir} to see dbt's full message",
            )
        project_vars = _project_vars(self.settings.project_dir)
        graph = to_graph(result.result, project_vars=project_vars, cli_vars=dict(self.settings.vars))
        return ParsedProject(graph=graph, manifest=result.result)

    def build(
        self, parsed: ParsedProject, placements: Mapping[str, Placement], select: Sequence[str]
    ) -> list[NodeResult]:
        """Build the selected nodes (and run their tests) with every placed node's relation
        pointed at its physical name, so refs resolve to physical relations."""
        return self._run("build", parsed, placements, select)

    def test(
        self, parsed: ParsedProject, placements: Mapping[str, Placement], select: Sequence[str]
    ) -> list[NodeResult]:
        """Run the data and unit tests of the selected nodes against their placed relations."""
        return self._run("test", parsed, placements, select)

    def _run(
        self, command: str, parsed: ParsedProject, placements: Mapping[str, Placement], select: Sequence[str]
    ) -> list[NodeResult]:
        manifest = parsed.manifest
        for unique_id, placement in placements.items():
            _place(manifest.nodes[unique_id], placement)
        selectors = [_selector(manifest.nodes[uid]) for uid in select]
        result = self._invoke([command, "--select", *selectors], manifest=manifest)
        redact = self.redactor(parsed.graph)
        if result.result is None:
            _refuse_unwritable(result)
            raise ProjectError(f"dbt {command} could not start: {redact(_why(result))}")
        return [_node_result(r, redact) for r in result.result.results]

    def _invoke(self, args: list[str], manifest: Any = None) -> Any:
        from dbt.cli.main import dbtRunner

        callbacks: list[Any] = [self._event] if self._on_node else []
        runner = dbtRunner(manifest=manifest, callbacks=callbacks)
        with _DBT_LOCK, _working_directory(self.settings.cwd):
            try:
                return runner.invoke([*args, *self._common_args()])
            finally:
                _release_duckdb()

    def _common_args(self) -> list[str]:
        s = self.settings
        args = ["--project-dir", str(s.project_dir), "--target-path", str(s.target_path)]
        # The API never prints: dbt logs to its file only (which follows --log-level unless
        # told otherwise), in plain text, as its messages (a unit test's diff) reach results
        # and the ledger.
        args += ["--log-path", str(s.log_path), "--log-level", "none", "--log-level-file", "debug"]
        args += ["--no-use-colors", "--no-send-anonymous-usage-stats", "--no-write-json"]
        args += ["--vars", json.dumps(dict(s.vars), sort_keys=True, default=str)]
        if s.profiles_dir is not None:
            args += ["--profiles-dir", str(s.profiles_dir)]
        if s.profile:
            args += ["--profile", s.profile]
        if s.target:
            args += ["--target", s.target]
        return args

    def _event(self, event: Any) -> None:
        if self._on_node is None or event.info.name != "NodeFinished":
            return
        info = event.data.node_info
        self._on_node(info.unique_id, str(info.node_status))


def _release_duckdb() -> None:
    """Close the database dbt-duckdb keeps open after dbt returns.

    dbt-duckdb caches one open database per process in a class attribute, reused while
    the profile's credentials are equal. Left open it keeps the file locked against every
    other process (`releasekit status` in another shell fails as busy), and as a relative
    `path` gives two projects equal credentials, the next project's dbt run in this
    process would build into the first project's file.
    """
    module = sys.modules.get("dbt.adapters.duckdb.connections")
    if module is None:
        return  # another adapter, or dbt never connected
    manager = module.DuckDBConnectionManager
    with manager._LOCK:
        environment, manager._ENV = manager._ENV, None
    if environment is not None:
        environment.close()


def _place(node: Any, placement: Placement) -> None:
    node.schema = placement.schema
    node.alias = placement.alias
    node.relation_name = ".".join(
        _quote(part) for part in (node.database, placement.schema, placement.alias) if part
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _selector(node: Any) -> str:
    return "fqn:" + ".".join(node.fqn)


def _node_result(result: Any, redact: Redactor) -> NodeResult:
    return NodeResult(
        unique_id=result.node.unique_id,
        resource_type=str(result.node.resource_type),
        status=str(result.status),
        message=redact(str(result.message or "")),
        failures=result.failures,
        seconds=float(result.execution_time or 0.0),
        path=str(getattr(result.node, "original_file_path", "") or ""),
    )


def _refuse_unwritable(result: Any) -> None:
    """dbt writes its logs and target folder under releasekit's state folder; a path there
    it cannot write is a setup problem with a fix, not a project error."""
    exception = getattr(result, "exception", None)
    if isinstance(exception, OSError) and exception.filename:
        path = Path(exception.filename)
        raise ProjectError(
            f"dbt cannot write {path}: {exception.strerror or exception}",
            hint=f"make {path.parent} writable by this user, or point the state elsewhere "
            "(state.path in releasekit.yml, RELEASEKIT_STATE_PATH or --state-path)",
        )


def _why(result: Any) -> str:
    exception = getattr(result, "exception", None)
    return str(exception).strip() if exception else "see the dbt log"


def _project_vars(project_dir: Path) -> dict[str, Any]:
    try:
        with open(project_dir / "dbt_project.yml", encoding="utf-8") as handle:
            data = load_yaml(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"cannot read {project_dir / 'dbt_project.yml'}: {exc}") from exc
    return dict(data.get("vars") or {})


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    # dbt-duckdb resolves a relative database path against the working directory.
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
