"""`releasekit check` end to end: real git branches, real dbt builds on DuckDB, real sqlfluff.

One repository per module with dev deployed from main; every test works on its own
branch (so its own branch environment) forked from main, and checks it the way a
developer or a CI job would, through the API or the CLI.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from releasekit import api
from releasekit.api import Workspace
from releasekit.checks.codec import from_dict
from releasekit.checks.report import CheckReport
from releasekit.dbtcore.artifacts import graph_from_bytes, graph_key
from releasekit.errors import ProjectError
from tests.support.cli_runs import run_cli
from tests.support.projects import BASE_FILES, commit, git, make_repo, write_files

pytestmark = pytest.mark.integration

# sqlfluff's default rules hold for these (the shop project's own files do not).
CLEAN_REVENUE = (
    "select\n"
    "    customer_id,\n"
    "    sum(amount_cents) as revenue_cents\n"
    "from {{ ref('orders') }}\n"
    "group by customer_id\n"
)
CLEAN_CUSTOMERS = (
    "{{ config(materialized='table') }}\n\n"
    "select\n"
    "    customer_id,\n"
    "    name,\n"
    "    upper(name) as display_name\n"
    "from {{ ref('stg_customers') }}\n"
)
# An exposure on big_spenders and a logic test on orders; both pass on main.
EXTRA_FILES = {
    "models/exposures.yml": (
        "version: 2\n"
        "exposures:\n"
        "  - name: spend_dashboard\n"
        "    type: dashboard\n"
        "    owner: {name: analytics, email: analytics@example.com}\n"
        "    depends_on: [ref('big_spenders')]\n"
    ),
    "logic_tests/orders_have_customers.sql": (
        "-- description: every order belongs to a known customer\n"
        "select o.id from {{ ref('orders') }} as o\n"
        "left join {{ ref('customers') }} as c on o.customer_id = c.customer_id\n"
        "where c.customer_id is null\n"
    ),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("check") / "repo", EXTRA_FILES)
    assert api.deploy(Workspace.open(root), "dev").ok
    return root


@pytest.fixture
def branch(repo: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"check/{request.node.name[:40]}"
    git(repo, "switch", "-q", "-c", name, "main")
    yield name
    git(repo, "switch", "-q", "main")


def change(repo: Path, files: Mapping[str, str], message: str = "change") -> str:
    write_files(repo, files)
    return commit(repo, message)


def check(repo: Path, **options: object) -> CheckReport:
    return api.check(Workspace.open(repo), **options)  # type: ignore[arg-type]


def statuses(report: CheckReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_a_clean_change_passes_and_is_recorded_for_its_commit(repo: Path, branch: str) -> None:
    sha = change(repo, {"models/revenue.sql": CLEAN_REVENUE})

    report = check(repo)

    assert report.passed and report.verdict == "PASSED", report
    assert statuses(report) == {"lint": "passed", "build": "passed", "logic": "passed", "diff": "passed"}
    assert report.env == branch and report.base == "dev" and report.git_sha == sha
    assert report.changed_files == ("models/revenue.sql",)
    lint = report.check("lint")
    assert lint is not None and [c.name for c in lint.cases] == ["models/revenue.sql"]
    build = report.check("build")
    assert build is not None and "2 built" in build.summary  # revenue and big_spenders only
    assert [i.model for i in report.impacts] == ["revenue"]
    assert report.impacts[0].classification == "non-breaking"
    [recorded] = Workspace.open(repo).store.checks(sha)
    assert recorded.passed and recorded.env == branch and recorded.release_id == report.release_id
    assert from_dict(recorded.report) == report


def test_a_lint_violation_fails_lint_only(repo: Path, branch: str) -> None:
    change(repo, {"models/revenue.sql": CLEAN_REVENUE.replace("    customer_id,\n", "    customer_id ,\n")})

    report = check(repo)

    assert statuses(report) == {"lint": "failed", "build": "passed", "logic": "passed", "diff": "passed"}
    lint = report.check("lint")
    assert lint is not None
    assert {(f.path, f.line, f.code) for f in lint.findings} == {("models/revenue.sql", 2, "LT01")}
    assert not report.passed and report.verdict == "FAILED: lint"


def test_a_failing_dbt_test_fails_build_and_skips_what_reads_the_environment(repo: Path, branch: str) -> None:
    # Two orders with id 1: the unique test on orders.id fails.
    change(repo, {"seeds/raw_orders.csv": BASE_FILES["seeds/raw_orders.csv"] + "1,2,50\n"})

    report = check(repo)

    assert statuses(report) == {"lint": "passed", "build": "failed", "logic": "skipped", "diff": "skipped"}
    build = report.check("build")
    assert build is not None
    assert [f.code for f in build.findings] == ["unique_orders_id"]
    assert any(not c.passed and c.name == "unique_orders_id" for c in build.cases)
    assert "build failed" in report.check("logic").summary  # type: ignore[union-attr]
    assert report.verdict == "FAILED: build"


def test_a_failing_logic_test_fails_logic(repo: Path, branch: str) -> None:
    # Customer 2 disappears, and its order with it... except that orders joins customers,
    # so make orders keep customer 3 by reading stg_orders alone.
    orders = BASE_FILES["models/orders.sql"].replace(
        "join {{ ref('customers') }} c using (customer_id)",
        "left join {{ ref('customers') }} c using (customer_id)",
    )
    change(
        repo, {"models/orders.sql": orders, "seeds/raw_orders.csv": "id,customer_id,amount\n1,1,20\n4,9,30\n"}
    )

    report = check(repo, only=("build", "logic"))

    assert statuses(report) == {"lint": "skipped", "build": "passed", "logic": "failed", "diff": "skipped"}
    logic = report.check("logic")
    assert logic is not None
    [finding] = logic.findings
    assert finding.code == "orders_have_customers" and finding.path == "logic_tests/orders_have_customers.sql"
    assert "1 violating row(s)" in finding.message and "id=4" in finding.message


def test_a_dropped_column_used_downstream_is_breaking_and_names_its_dependants(
    repo: Path, branch: str
) -> None:
    # customers loses `name`; orders stops reading it, so everything still builds.
    customers = "{{ config(materialized='table') }}\nselect customer_id from {{ ref('stg_customers') }}\n"
    orders = BASE_FILES["models/orders.sql"].replace("c.name", "'unknown' as name")
    change(repo, {"models/customers.sql": customers, "models/orders.sql": orders})

    report = check(repo, only=("build", "diff"))

    assert report.check("build").status == "passed"  # type: ignore[union-attr]
    [impact] = [i for i in report.impacts if i.model == "customers"]
    assert impact.classification == "breaking"
    assert [(c.column, c.change) for c in impact.columns] == [("name", "removed")]
    assert "orders" in impact.breaking_because
    diff = report.check("diff")
    assert diff is not None and diff.status == "failed"
    assert ("breaking-change", "customers") in [(f.code, f.subject) for f in diff.findings]
    assert report.verdict == "FAILED: diff"


def test_a_retyped_column_is_breaking_unless_the_policy_allows_it(repo: Path, branch: str) -> None:
    change(
        repo, {"models/revenue.sql": CLEAN_REVENUE.replace("sum(amount_cents)", "sum(amount_cents)::double")}
    )
    report = check(repo, only=("build", "diff"))
    [impact] = report.impacts
    assert impact.classification == "breaking" and impact.columns[0].change == "retyped"
    assert impact.breaking_because == ("big_spenders",)

    allowing = {
        "environments/dev.yml": "version: 1\nschema: dev\nbranch: main\nchecks:\n  allow_breaking: true\n"
    }
    change(repo, allowing)
    # The branch's own policy is reported, not applied: dev's deployed commit judges it...
    still = check(repo, only=("build", "diff"))
    assert not still.passed and still.verdict == "FAILED: diff"
    assert any("environments/dev.yml: checks.allow_breaking true (base: false)" in n for n in still.notes)

    # ...until the policy is merged and deployed to dev.
    git(repo, "switch", "-q", "main")
    policy = change(repo, allowing, "dev allows breaking changes")
    try:
        assert api.deploy(Workspace.open(repo), "dev").ok
        git(repo, "switch", "-q", branch)
        git(repo, "merge", "-q", "--no-edit", "main")
        allowed = check(repo, only=("build", "diff"))
        assert allowed.passed and allowed.verdict == "PASSED with warnings: diff"
    finally:
        git(repo, "switch", "-q", "main")
        git(repo, "revert", "--no-edit", policy)
        assert api.deploy(Workspace.open(repo), "dev").ok
        git(repo, "switch", "-q", branch)


def test_a_new_column_is_non_breaking(repo: Path, branch: str) -> None:
    change(repo, {"models/customers.sql": CLEAN_CUSTOMERS})

    report = check(repo)

    assert report.passed, report.verdict
    [impact] = [i for i in report.impacts if i.model == "customers"]
    assert impact.classification == "non-breaking"
    assert [(c.column, c.change) for c in impact.columns] == [("display_name", "added")]
    assert impact.rows_before == impact.rows_after == 2


def test_a_model_that_does_not_compile_cannot_be_checked_and_says_where(repo: Path, branch: str) -> None:
    change(repo, {"models/revenue.sql": "select {{ ref('orders' }} as broken\n"})

    with pytest.raises(ProjectError) as raised:
        check(repo)

    assert "models/revenue.sql" in str(raised.value) and "line 1" in str(raised.value)


def test_a_macro_change_is_linted_and_rebuilds_exactly_its_callers(repo: Path, branch: str) -> None:
    money = BASE_FILES["macros/money.sql"].replace("* 100", "*100")
    change(repo, {"macros/money.sql": money})

    report = check(repo, only=("lint", "build", "diff"))

    lint = report.check("lint")
    assert lint is not None and [c.name for c in lint.cases] == ["macros/money.sql"]
    live = api.releases(Workspace.open(repo), branch)[-1]
    assert {uid.split(".")[-1] for uid in live.built} == {"orders", "revenue", "big_spenders"}
    assert [i.model for i in report.impacts] == ["orders"]  # its callers; the rest is downstream
    assert set(report.impacts[0].downstream) == {"revenue", "big_spenders"}
    assert "spend_dashboard" in report.impacts[0].exposures


def test_the_cli_writes_junit_json_and_markdown_that_agree_with_its_verdict(
    repo: Path, branch: str, tmp_path: Path
) -> None:
    change(repo, {"models/revenue.sql": CLEAN_REVENUE.replace("    customer_id,\n", "    customer_id ,\n")})
    out = tmp_path / "reports"

    run = run_cli(
        repo,
        "check",
        "--junit",
        str(out / "junit.xml"),
        "--json",
        str(out / "report.json"),
        "--markdown",
        str(out / "comment.md"),
    )

    assert run.code == 1, run.text()
    assert "FAILED: lint" in run.stdout
    document = json.loads((out / "report.json").read_text())
    assert document["passed"] is False and document["verdict"] == "FAILED: lint"
    suites = ET.parse(out / "junit.xml").getroot()
    lint = next(s for s in suites if s.get("name") == "releasekit.lint")
    assert int(lint.get("failures", "0")) >= 1
    failures = sum(int(s.get("failures", "0")) for s in suites)
    assert failures == sum(1 for c in suites.iter("testcase") if c.find("failure") is not None)
    assert "FAILED: lint" in (out / "comment.md").read_text()


def test_checks_refuse_declared_environments_and_need_a_deployed_base(repo: Path, tmp_path: Path) -> None:
    run = run_cli(repo, "check", "--env", "dev")
    assert run.code == 2 and "declared environment" in run.text()
    fresh = make_repo(tmp_path / "fresh")
    git(fresh, "switch", "-q", "-c", "feature")
    run = run_cli(fresh, "check")
    assert run.code == 2 and "no live release" in run.text() and "releasekit deploy dev" in run.text()


def test_a_deploy_leaves_its_parsed_graph_for_checks_and_it_reads_back_equal(repo: Path) -> None:
    workspace = Workspace.open(repo)
    dev = workspace.environment("dev")
    live = api.releases(workspace, "dev")[-1]
    stored = workspace.store.get_artifact(graph_key(live.git_sha, dev.target, live.params))
    assert stored is not None
    context = workspace.run_context(dev, builds=True)
    assert context.dbt is not None and context.git_sha == live.git_sha
    assert graph_from_bytes(stored) == context.dbt.parse().graph
    assert graph_from_bytes(b'{"format": "releasekit.graph/0"}') is None
    assert graph_from_bytes(b"not json") is None


def test_releasekit_lint_lints_the_files_it_is_given_as_the_pre_commit_hook_runs_it(
    repo: Path, branch: str
) -> None:
    write_files(
        repo,
        {
            "models/clean.sql": CLEAN_REVENUE,
            "models/messy.sql": "select a ,b from x\n",
            "NOTES.md": "# notes\n",
        },
    )

    run = run_cli(repo, "lint", "models/clean.sql", "models/messy.sql", "NOTES.md")  # not SQL: skipped

    assert run.code == 1, run.text()
    assert "2 file(s) linted" in run.stdout and "models/messy.sql:1:9" in run.stdout
    assert "models/clean.sql" not in run.stdout.split("linted", 1)[1]
    assert run_cli(repo, "lint", "models/clean.sql").code == 0
    mistyped = run_cli(repo, "lint", "models/clean.sql", "models/claen.sql")
    assert mistyped.code == 2 and "no such file" in mistyped.stderr and "claen.sql" in mistyped.stderr
    (repo / "models" / "messy.sql").unlink()
    (repo / "models" / "clean.sql").unlink()
    (repo / "NOTES.md").unlink()
