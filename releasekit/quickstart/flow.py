"""`releasekit quickstart DIR`: a demo repository and the whole release flow, narrated.

The flow calls the same API as every command; a Narrator (the terminal reporter)
draws what happens. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from releasekit import api
from releasekit.config.scaffold import init_project
from releasekit.errors import PromotionRefused, ReleasekitError
from releasekit.gitops.repo import GitRepo
from releasekit.quickstart.demo import (
    DEMO_CHANGE,
    DEMO_VAR,
    RAW_SCHEMA,
    SOURCES,
    DemoProject,
    RawLoad,
    load_raw,
    write_demo_project,
)
from releasekit.state.base import LedgerEntry
from releasekit.warehouse.duckdb_load import count_rows

FEATURE_BRANCH = "feature/revenue-on-placement"
# staging and prod leave the shop's test accounts out of their numbers; dev keeps them.
ENV_VARS = {"dev": "true", "staging": "false", "prod": "false"}


class Narrator(Protocol):
    def chapter(self, number: int, title: str, text: str) -> None: ...
    def plan(self, plan: api.Plan) -> None: ...
    def deploy(self, result: api.DeployResult) -> None: ...
    def rollback(self, result: api.RollbackResult) -> None: ...
    def check(self, report: api.CheckReport) -> None: ...
    def status(self, statuses: Sequence[api.EnvironmentStatus]) -> None: ...
    def refresh(self, result: api.RefreshResult) -> None: ...
    def releases(self, env: str, entries: Sequence[LedgerEntry]) -> None: ...
    def note(self, text: str) -> None: ...
    def done(self, text: str) -> None: ...


@dataclass(frozen=True)
class QuickstartResult:
    root: Path
    demo: DemoProject
    state_path: Path
    dev_releases: int
    feature_built: tuple[str, ...]  # built once, by the check, in the branch environment
    dev_built: tuple[str, ...]  # built again when the change reached dev: nothing
    dev_orders: tuple[int, int, int]  # rows of dev.orders: before the new day, after it, after the bad load


def run_quickstart(dest: Path, narrator: Narrator) -> QuickstartResult:
    root = _fresh_folder(dest)
    demo = write_demo_project(root)
    load_raw(demo, demo.history)  # before any releasekit run opens the warehouse file
    repo = _repository(root)
    narrator.chapter(1, "A dbt project in git", _intro(root, demo))
    workspace = api.Workspace.open(root)
    _deploy(
        workspace,
        "dev",
        narrator,
        2,
        "Deploy dev",
        "Every model is built once into rk__physical, tested, then dev's views switch to it.",
    )
    _promote(
        workspace,
        "staging",
        narrator,
        3,
        "Promote dev's release to staging",
        f"`releasekit promote staging` moves the commit dev serves into staging's branch and deploys "
        f"it with staging's parameters: staging sets {DEMO_VAR}=false. Models that don't read it have "
        "the fingerprints dev built: reused, not rebuilt. Only the var's readers and their "
        "descendants are built. (prod takes only what is promoted into it, from staging.)",
    )
    _change_on_branch(repo, root, narrator)
    narrator.chapter(
        5,
        "Check the branch",
        "`releasekit check` brings up the branch's own environment (views onto dev's release: "
        "no data copied), lints the changed file, builds the change and its descendants there "
        "and runs their tests, runs the logic tests in logic_tests/, and diffs against dev:",
    )
    report = api.check(workspace)
    narrator.check(report)
    if not report.passed:
        raise ReleasekitError("the quickstart's check of its change failed; see the findings above")
    branch = api.releases(workspace, FEATURE_BRANCH)[-1]
    narrator.chapter(
        6,
        "Deploy the change to dev",
        "dev takes the tables the check built and tested in the branch environment: their "
        "fingerprints are equal, so nothing is built twice. staging and prod are untouched.",
    )
    narrator.plan(api.plan(workspace, "dev"))
    changed = api.deploy(workspace, "dev")
    narrator.deploy(changed)
    narrator.chapter(7, "Roll back", "dev switches back to its previous release. Nothing is built.")
    narrator.rollback(api.rollback(workspace, "dev"))
    narrator.status(api.status(workspace))
    # Back on main, the commit dev serves again: a refresh reads its code from the working
    # tree, where dbt's parse cache is warm, instead of a checkout of its own.
    repo.switch("main")
    before, after = _refresh_new_day(workspace, demo, narrator, 8)
    held = _refresh_bad_day(workspace, demo, narrator, 9)
    result = QuickstartResult(
        root,
        demo,
        workspace.config.state_path,
        len(api.releases(workspace, "dev")),
        feature_built=tuple(branch.models[uid].name for uid in branch.built),
        dev_built=tuple(step.name for step in changed.plan.builds),
        dev_orders=(before, after, held),
    )
    narrator.done(_try_next(result))
    return result


def _fresh_folder(dest: Path) -> Path:
    root = dest.resolve()
    if root.exists() and any(root.iterdir()):
        raise ReleasekitError(
            f"{root} already exists and is not empty",
            hint="give the quickstart a new folder, for example: releasekit quickstart ./releasekit-demo-2",
        )
    root.mkdir(parents=True, exist_ok=True)
    return root


def _repository(root: Path) -> GitRepo:
    repo = GitRepo.create(root, branch="main")
    repo.set_identity("releasekit quickstart", "quickstart@releasekit.invalid")
    init_project(root, dbt_project_dir=root, target_names=("dev",), default_target="dev")
    for env, value in ENV_VARS.items():
        path = root / "environments" / f"{env}.yml"
        text = path.read_text(encoding="utf-8").replace("vars: {}", f"vars:\n  {DEMO_VAR}: {value}", 1)
        path.write_text(text, encoding="utf-8")
    repo.commit_all("Demo shop: dbt project and releasekit config")
    return repo


def _intro(root: Path, demo: DemoProject) -> str:
    return (
        f"Created {root}: a git repository with a dbt project on DuckDB ({len(demo.models)} models, "
        f"{len(demo.seeds)} seeds (customers, products), data tests and a unit test), plus "
        "releasekit.yml and environments/{dev,staging,prod}.yml. The shop's loader (here, the "
        f"quickstart) has loaded {_rows_of(demo.history)} into the warehouse's {RAW_SCHEMA} schema, "
        "outside dbt: the project reads them as sources."
    )


def _try_next(result: QuickstartResult) -> str:
    root = result.root
    before, after, held = result.dev_orders
    return (
        f"The change was built once, by the check in its branch environment: "
        f"{len(result.feature_built)} model(s) ({', '.join(result.feature_built)}); everything "
        f"else was reused, and dev reused the check's tables ({len(result.dev_built)} built). "
        f"New data reached dev by refresh (dev.orders {before:,} -> {after:,} rows); the bad load "
        f"did not (still {held:,}).\n"
        f"  project:   {root}\n"
        f"  warehouse: {result.demo.database_path} (schemas dev, staging: views; rk__physical: tables)\n"
        f"  ledger:    {result.state_path}\n\n"
        "Try next:\n"
        f"  cd {root}\n"
        "  releasekit releases dev        # the ledger: deploys, the rollback, the refreshes\n"
        "  releasekit refresh dev --dry-run  # the bad load is still in raw: what a refresh would write\n"
        "  releasekit status              # dev is held: sync leaves a rollback alone\n"
        "  releasekit env list            # the branch environment the check brought up\n"
        "  git switch feature/revenue-on-placement && releasekit check --markdown check.md\n"
        "  releasekit rollback dev --to 2 # back to the change, in one atomic switch\n"
        "  releasekit promote prod        # staging's release into prod: same parameters, nothing built\n"
        "  releasekit promote staging --dry-run  # staging's gates, and what promoting dev would build\n"
        "  releasekit gc --dry-run        # physical tables no retained release needs\n"
        "  python -c \"import duckdb; print(duckdb.connect('warehouse.duckdb')"
        ".sql('select * from staging.revenue_daily limit 5'))\""
    )


def _refresh_new_day(
    workspace: api.Workspace, demo: DemoProject, narrator: Narrator, number: int
) -> tuple[int, int]:
    narrator.chapter(
        number,
        "New data arrives: refresh dev",
        f"Back on main (the commit dev serves since the rollback), the loader appends "
        f"{demo.new_day.day}'s data to the {RAW_SCHEMA} tables: "
        f"{_rows_of(demo.new_day)}. Code is not what changed, so no deploy: `releasekit refresh dev` "
        "runs dev's live release (the rollback's hold stops `sync`, not new data) on the data as it "
        "is now. It writes new versions of the models downstream of the sources that changed, "
        "beside the live ones, tests them, and only then switches dev's views; the rest is kept:",
    )
    before = _dev_orders(demo)
    load_raw(demo, demo.new_day)
    result = api.refresh(workspace, "dev")
    narrator.refresh(result)
    if result.outcome != "published":
        raise ReleasekitError("the quickstart's refresh of dev held its new day back; see the failures above")
    after = _dev_orders(demo)
    narrator.note(
        f"dev.orders had {before:,} rows before the refresh and {after:,} after: consumers moved "
        "onto the new day in one atomic switch, never seeing a model refreshed and its parent not."
    )
    return before, after


def _refresh_bad_day(workspace: api.Workspace, demo: DemoProject, narrator: Narrator, number: int) -> int:
    replayed = ", ".join(str(order_id) for order_id in demo.replayed_orders)
    narrator.chapter(
        number,
        "A bad load is held back",
        f"The next day's load goes wrong: with {demo.bad_day.day}'s orders the loader sends "
        f"orders {replayed} of the day before again. stg_orders and orders declare order_id "
        "`unique`. The refresh writes and tests as before; a failed test publishes nothing "
        "(`releasekit refresh dev` would exit 1):",
    )
    load_raw(demo, demo.bad_day)
    result = api.refresh(workspace, "dev")
    narrator.refresh(result)
    if result.outcome != "held":
        raise ReleasekitError("the quickstart's bad load reached dev: its tests should have held it back")
    rows = _dev_orders(demo)
    narrator.note(
        f"dev.orders still has {rows:,} rows: consumers keep reading yesterday's data. (Views such as "
        f"dev.stg_orders read {RAW_SCHEMA} live, as any view does: the tables they feed are what "
        "refresh guards.) The attempt is in dev's ledger (`releasekit releases dev`):"
    )
    narrator.releases("dev", api.releases(workspace, "dev"))
    return rows


def _dev_orders(demo: DemoProject) -> int:
    """Rows consumers of dev read in its orders view, between releasekit runs."""
    return count_rows(demo.database_path, "dev", "orders")


def _rows_of(load: RawLoad) -> str:
    return ", ".join(f"{load.rows(table):,} {table.replace('_', ' ')}" for table in SOURCES)


def _deploy(
    workspace: api.Workspace, env: str, narrator: Narrator, number: int, title: str, text: str
) -> api.DeployResult:
    narrator.chapter(number, title, text)
    result = api.deploy(workspace, env)
    narrator.deploy(result)
    if not result.ok:
        raise ReleasekitError(f"the quickstart's deploy of {env} failed; see the failures above")
    return result


def _promote(
    workspace: api.Workspace, env: str, narrator: Narrator, number: int, title: str, text: str
) -> api.DeployResult:
    narrator.chapter(number, title, text)
    promoted = api.promote(workspace, env)
    if promoted.refused:
        raise PromotionRefused(promoted.refusal)
    result = promoted.deployed
    if result is None or not result.ok:
        raise ReleasekitError(f"the quickstart's promotion to {env} failed; see the failures above")
    narrator.deploy(result)
    return result


def _change_on_branch(repo: GitRepo, root: Path, narrator: Narrator) -> None:
    relative, old, new = DEMO_CHANGE
    repo.switch(FEATURE_BRANCH, create=True)
    path = root / relative
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    repo.commit_all("Count revenue when an order is placed")
    narrator.chapter(
        4,
        "Change a model on a branch",
        f"On branch {FEATURE_BRANCH}, {relative} now counts revenue from placed orders too.",
    )
