"""`releasekit check`: lint -> build and test -> logic tests -> impact and diff, in a branch
environment, against its base environment.

The rules come from the base, not the branch: the `checks:` policy that judges the branch
is the base environment's as its deployed commit declares it (what was reviewed and is
live), read from git. A branch that changes a policy is told so in its report (a note per
key); the change applies once it is merged and deployed.

Each step does only the work the change calls for: lint reads the SQL files the branch
changed since it forked from the base's deployed commit; the build is a deploy of the
branch environment (changed models and their descendants built, everything else reused);
logic tests and the diff read views. A step stops the run only when it makes the later
ones meaningless: a failed build leaves the environment on its previous release, so logic
tests and the diff (which read it) are skipped, saying why. What could not run at all
(no base release, a project dbt cannot parse, a broken config) raises instead.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from releasekit.checks import logic
from releasekit.checks.changes import detect_changes
from releasekit.checks.codec import to_dict
from releasekit.checks.impact import breaking_findings, measure_impact
from releasekit.checks.report import (
    CHECK_ORDER,
    REPORT_VERSION,
    CheckName,
    CheckReport,
    CheckResult,
    Finding,
    ModelImpact,
    Severity,
)
from releasekit.checks.results import build_result, judged, lint_result, logic_result, skipped, spc_findings
from releasekit.config.model import CheckPolicy, EnvironmentConfig, SpcPolicy
from releasekit.dbtcore.session import DbtProject, NodeCallback
from releasekit.engine.deploy import DeployResult, deploy
from releasekit.engine.fingerprint import fingerprint_graph
from releasekit.engine.graphs import keep_graph, stored_graph
from releasekit.engine.quality import judge_measurements, model_policies, read_history
from releasekit.environments.policy import committed, config_at, policy_changes, project_content
from releasekit.graph import ProjectGraph
from releasekit.lint import dialect_for_adapter, lint
from releasekit.state.base import CheckRecord, LedgerEntry
from releasekit.state.ledger import live_entry, releases, require_live
from releasekit.warehouse.base import Warehouse
from releasekit.workspace import Workspace

_SQL_FOLDERS_SKIPPED = frozenset({"target", "dbt_packages", "dbt_modules", "logs", ".releasekit", ".git"})


@dataclass(frozen=True)
class CheckRequest:
    env: EnvironmentConfig  # the branch environment the checks run in
    base: EnvironmentConfig  # the environment it is compared against; its policy applies
    only: Collection[CheckName] = CHECK_ORDER
    lint_all: bool = False  # lint every SQL file of the project, not only the changed ones


StepCallback = Callable[[str], None]  # told the name of each step as it starts

# Why a check did not run: --only left it out, the base's policy turns it off, or a failed
# build left nothing for it to read.
SkipReason = Literal["only", "off", "blocked"]


@dataclass(frozen=True)
class CheckRun:
    """A check's report, and what a promotion gate needs to know of it."""

    report: CheckReport
    ran: tuple[CheckName, ...]
    skipped: Mapping[CheckName, SkipReason]
    content: str | None  # the git tree of the dbt project checked; None for a dirty tree

    @property
    def full(self) -> bool:
        """Every check the policy does not turn off ran."""
        return all(reason == "off" for reason in self.skipped.values())

    def record(self, who: str) -> CheckRecord:
        """What the state store keeps of this run against its commit, for promotion gates:
        the verdict, each check's status, what ran and was skipped, the content checked."""
        report = self.report
        return CheckRecord(
            git_sha=report.git_sha,
            env=report.env,
            base=report.base,
            release_id=report.release_id,
            passed=report.passed,
            verdict=report.verdict,
            statuses={c.name: c.status for c in report.checks},
            who=who,
            at=report.started_at,
            report=to_dict(report),
            ran=self.ran,
            skipped={name: str(reason) for name, reason in self.skipped.items()},
            content=self.content,
        )


def run_checks(
    workspace: Workspace,
    request: CheckRequest,
    *,
    on_node: NodeCallback | None = None,
    on_step: StepCallback | None = None,
) -> CheckRun:
    started, clock = datetime.now(UTC), time.perf_counter()
    run = _Run(workspace, request, on_node, on_step or (lambda step: None))
    checks = run.all_steps()
    report = CheckReport(
        version=REPORT_VERSION,
        env=request.env.name,
        base=request.base.name,
        git_sha=run.git_sha,
        base_sha=run.base_live.git_sha,
        release_id=run.release_id(),
        started_at=started.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - clock, 3),
        checks=tuple(checks),
        impacts=run.impacts,
        changed_files=tuple(run.changed),
        notes=tuple(run.notes),
    )
    content = project_content(workspace.repo, workspace.config.dbt_project_dir, run.git_sha)
    return CheckRun(report, tuple(run.ran), dict(run.skips), content)


class _Run:
    def __init__(
        self, workspace: Workspace, request: CheckRequest, on_node: NodeCallback | None, on_step: StepCallback
    ) -> None:
        self.workspace, self.request, self.on_step = workspace, request, on_step
        self.context = workspace.run_context(request.env, builds=True, on_node=on_node)
        self.git_sha = self.context.git_sha
        self.base_live = _base_release(workspace, request.base)
        base_commit = committed(self.base_live.git_sha)
        self.changed = [f.path for f in workspace.repo.changed_since(base_commit) if not f.deleted]
        self.impacts: tuple[ModelImpact, ...] = ()
        self.notes: list[str] = []
        self.deployed: DeployResult | None = None
        self.ran: list[CheckName] = []
        self.skips: dict[CheckName, SkipReason] = {}
        self.base_policy = self._base_policy(base_commit)

    def _base_policy(self, commit: str) -> CheckPolicy:
        """The base's `checks:` as its deployed commit declares them; the branch's own
        changes to any policy are noted, not applied."""
        base, config = self.request.base.name, self.workspace.config
        declared = config_at(self.workspace.repo, config.root, commit)
        where = f"{base}'s deployed commit {commit[:12]}"
        if declared is None:
            self.notes.append(
                f"{where} has no releasekit configuration: the checks ran with the default policy "
                "(every check at error)"
            )
        elif base not in declared.environments:
            self.notes.append(f"{where} does not declare {base}: the checks ran with the default policy")
        changes = policy_changes(declared, config)
        self.notes += [
            f"this branch changes a policy, which applies once merged and deployed; the checks "
            f"ran with {where}'s: {change}"
            for change in changes
        ]
        env = declared.environments.get(base) if declared is not None else None
        self.base_spc = env.spc if env is not None else SpcPolicy()
        return env.checks if env is not None else CheckPolicy()

    def policy(self, name: CheckName) -> Severity | None:
        """The base's policy for a check, from its deployed commit; None: turned off."""
        level = self.base_policy.severity(name)
        return None if level == "off" else ("warn" if level == "warn" else "error")

    def all_steps(self) -> list[CheckResult]:
        steps: dict[CheckName, Callable[[Severity], CheckResult]] = {
            "lint": self.lint,
            "build": self.build,
            "logic": self.logic,
            "diff": self.diff,
        }
        results: list[CheckResult] = []
        for name in CHECK_ORDER:
            level = self.policy(name)
            if level is None:
                self.skips[name] = "off"
                results.append(
                    skipped(name, "warn", f"turned off in {self.request.base.name}'s check policy")
                )
            elif name not in self.request.only:
                self.skips[name] = "only"
                results.append(skipped(name, level, "not asked for (--only)"))
            elif blocked := self._blocked(name):
                self.skips[name] = "blocked"
                results.append(skipped(name, level, blocked))
            else:
                self.ran.append(name)
                self.on_step(name)
                start = time.perf_counter()
                result = steps[name](level)
                results.append(dataclasses.replace(result, seconds=round(time.perf_counter() - start, 3)))
        return results

    def _blocked(self, name: CheckName) -> str | None:
        if name in ("logic", "diff") and self.deployed is not None and not self.deployed.ok:
            return "the build failed, so the branch environment still serves its previous release"
        return None

    def release_id(self) -> int | None:
        live = live_entry(self.workspace.store.entries(self.request.env.name))
        return live.release_id if live else None

    # --- the steps -------------------------------------------------------------------------

    def lint(self, severity: Severity) -> CheckResult:
        project_dir = self.workspace.config.dbt_project_dir
        if self.request.lint_all:
            files = [p for p in sorted(project_dir.rglob("*.sql")) if not _SQL_FOLDERS_SKIPPED & set(p.parts)]
        else:
            files = [self.workspace.repo.root / path for path in self.changed if path.endswith(".sql")]
        return lint_files(self.workspace, self.request.env, files, severity)

    def build(self, severity: Severity) -> CheckResult:
        self.deployed = deploy(self.context)
        return build_result(self.deployed, severity)

    def logic(self, severity: Severity) -> CheckResult:
        tests = logic.discover(self.workspace.config.dbt_project_dir)
        live = live_entry(self.workspace.store.entries(self.request.env.name))
        models = [version.name for version in live.models.values()] if live else []
        with self.context.warehouse() as warehouse:
            outcomes = logic.run(tests, warehouse, self.request.env.schema, models)
        return logic_result(outcomes, severity, self.workspace.repo.root)

    def diff(self, severity: Severity) -> CheckResult:
        branch = self._branch_graph()
        base = self._base_graph()
        environ = self.workspace.environ
        changes = detect_changes(
            base, branch, fingerprint_graph(base, environ), fingerprint_graph(branch, environ)
        )
        with self.context.warehouse() as warehouse:
            pinned = self._base_release_relations(warehouse)
            measured = measure_impact(
                changes, warehouse, self.request.base.schema, self.request.env.schema, base_relations=pinned
            )
        self.impacts = measured.impacts
        self.notes += measured.notes
        findings = [
            self._located(f, branch, base)
            for f in [*breaking_findings(measured.impacts, severity=severity), *self._spc_findings(base)]
        ]
        counts = {kind: sum(1 for i in measured.impacts if i.classification == kind) for kind in _CLASSES}
        summary = f"{len(measured.impacts)} model(s) changed: " + ", ".join(
            f"{n} {k}" for k, n in counts.items()
        )
        return judged("diff", severity, summary, findings)

    def _spc_findings(self, base: ProjectGraph) -> list[Finding]:
        """The branch's rebuilt models, as its build measured them, judged against the base
        environment's history under the base's policy (its deployed commit's, so a branch
        cannot turn the judge off): a change that halves a table shows here, tests or not."""
        if self.deployed is None or not self.deployed.quality.measurements:
            return []
        policies = model_policies(base, self.base_spc)
        measured = self.deployed.quality.measurements
        base_env = self.request.base.name
        history = read_history(self.workspace.store, base_env, [m.unique_id for m in measured], policies)
        judged = judge_measurements(measured, policies, history, {}, rebuild=True)
        return spc_findings(judged, self.request.base.name)

    def _located(self, finding: Finding, *graphs: ProjectGraph) -> Finding:
        """A diff finding with the model's file, relative to the repository's top."""
        for graph in graphs:
            node = next((n for n in graph.nodes.values() if n.name == finding.subject and n.path), None)
            if node is not None:
                path = self.workspace.config.dbt_project_dir / node.path
                return dataclasses.replace(
                    finding, path=path.relative_to(self.workspace.repo.root).as_posix()
                )
        return finding

    def _branch_graph(self) -> ProjectGraph:
        if self.deployed is not None and self.deployed.graph is not None:
            return self.deployed.graph
        assert self.context.dbt is not None
        return self.context.dbt.parse().graph

    def _base_release_relations(self, warehouse: Warehouse) -> dict[str, tuple[str, str]]:
        """The relations of the base release the branch environment is on, when the base
        serves the same commit on other data since (a refresh): the diff then compares
        against the data the branch holds, so a difference is the code's doing. Empty when
        the base still serves that release, moved on to other code, or that release's
        relations are gone (then the base's views, as always)."""
        record = self.workspace.store.branch(self.request.env.name)
        if record is None or record.base_release == self.base_live.release_id:
            return {}
        entries = self.workspace.store.entries(self.request.base.name)
        found = [
            r for r in releases(entries) if r.release_id == record.base_release and r.outcome == "succeeded"
        ]
        if not found or found[0].git_sha != self.base_live.git_sha:
            return {}
        physical = self.workspace.config.physical_schema
        relations = {v.name: (physical, v.relation) for v in found[0].models.values()}
        if not {relation for _, relation in relations.values()} <= warehouse.relations(physical):
            self.notes.append(
                f"diff against {self.request.base.name}'s current data: release {record.base_release}, "
                "which this branch environment is on, was garbage-collected"
            )
            return {}
        if found[0].models != self.base_live.models:
            self.notes.append(
                f"diff against {self.request.base.name} release {record.base_release}, the data this branch "
                f"environment holds ({self.request.base.name} has been refreshed since: "
                f"`releasekit env up {self.request.env.name} --rebase` moves the branch onto it)"
            )
        return relations

    def _base_graph(self) -> ProjectGraph:
        """The base's project as its deployed commit had it, with the base's parameters: the
        graph its deploy left in the state store, else parsed in a temporary worktree (the
        user's checkout is never touched) and left there for the next check."""
        store, live, target = self.workspace.store, self.base_live, self.request.base.target
        graph = stored_graph(store, live.git_sha, target, live.params)
        if graph is None:
            graph = self._parse_base()
            keep_graph(store, live.git_sha, target, live.params, graph)
        return graph

    def _parse_base(self) -> ProjectGraph:
        commit = self.base_live.git_sha.removesuffix("-dirty")
        with self.workspace.repo.worktree_at(commit) as tree:
            settings = self.workspace.settings_at(self.request.base, tree)
            settings = dataclasses.replace(settings, vars=dict(self.base_live.params))
            return DbtProject(settings).parse().graph


_CLASSES = ("breaking", "non-breaking", "metadata-only")


def lint_files(
    workspace: Workspace, env: EnvironmentConfig, files: Sequence[Path], severity: Severity | None = None
) -> CheckResult:
    """Lint the files of the dbt project among `files` with `env`'s parameters and the
    project's sqlfluff config. `severity`: the findings' (default: `env`'s lint policy)."""
    config = workspace.config
    level: Severity = severity or ("warn" if env.checks.severity("lint") == "warn" else "error")
    inside = [p.resolve() for p in files if p.resolve().is_relative_to(config.dbt_project_dir.resolve())]
    if not inside:
        return judged("lint", level, "no SQL files of the dbt project to lint", [])
    run = lint(
        config.dbt_project_dir,
        inside,
        dialect=dialect_for_adapter(workspace.run_context(env).connection.type),
        dbt_vars=env.vars,
        environ=workspace.environ,
        relative_to=workspace.repo.root,
        profiles_dir=config.profiles_dir,
        profile=config.profile,
        target=env.target,
    )
    return lint_result(run, level)


def _base_release(workspace: Workspace, base: EnvironmentConfig) -> LedgerEntry:
    entries = workspace.store.entries(base.name)
    return require_live(entries, base.name, "check against", label=f"the base environment {base.name!r}")
