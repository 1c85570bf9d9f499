"""Fingerprints over real dbt parses of a small project: what changes, and what must not."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from releasekit.dbtcore.session import DbtProject, DbtSettings
from releasekit.engine.fingerprint import Fingerprint, fingerprint_graph
from tests.support.projects import BASE_FILES, write_files

pytestmark = pytest.mark.integration

MODELS = {"raw_orders", "stg_orders", "stg_customers", "customers", "orders", "revenue", "big_spenders"}


def fingerprints(
    root: Path, vars_: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Fingerprint]:
    settings = DbtSettings(
        project_dir=root,
        profiles_dir=root,
        profile=None,
        target=None,
        vars=dict(vars_ or {}),
        target_path=root / "target",
        log_path=root / "logs",
    )
    graph = DbtProject(settings).parse().graph
    prints = fingerprint_graph(graph, environ or {})
    return {graph.nodes[uid].name: fp for uid, fp in prints.items() if uid.split(".")[0] != "source"}


def changed(before: dict[str, Fingerprint], after: dict[str, Fingerprint]) -> set[str]:
    return {
        name
        for name in before.keys() | after.keys()
        if (before.get(name) and before[name].digest) != (after.get(name) and after[name].digest)
    }


def own_input_changed(before: dict[str, Fingerprint], after: dict[str, Fingerprint]) -> set[str]:
    """Models whose own inputs changed, not just a parent's fingerprint."""

    def own(fp: Fingerprint) -> dict[str, str]:
        return {k: v for k, v in fp.inputs.items() if not k.startswith("parent:")}

    return {name for name in before if own(before[name]) != own(after[name])}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_files(tmp_path, BASE_FILES)
    return tmp_path


def test_every_model_and_seed_has_a_fingerprint(project: Path) -> None:
    assert set(fingerprints(project)) == MODELS


def test_same_project_same_fingerprints(project: Path) -> None:
    assert changed(fingerprints(project), fingerprints(project)) == set()


def test_editing_a_model_changes_it_and_its_descendants_only(project: Path) -> None:
    before = fingerprints(project)
    write_files(
        project,
        {
            "models/stg_orders.sql": BASE_FILES["models/stg_orders.sql"].replace(
                " amount", " amount * 1 as amount"
            )
        },
    )
    after = fingerprints(project)
    assert changed(before, after) == {"stg_orders", "orders", "revenue", "big_spenders"}
    assert own_input_changed(before, after) == {"stg_orders"}


def test_editing_a_macro_changes_exactly_its_callers_transitively(project: Path) -> None:
    write_files(
        project,
        {
            "macros/dollars.sql": "{% macro dollars(column) %}({{ cents(column) }} / 100.0){% endmacro %}\n",
            "models/customer_dollars.sql": (
                "select customer_id, {{ dollars('1') }} as one from {{ ref('customers') }}\n"
            ),
        },
    )
    before = fingerprints(project)
    write_files(project, {"macros/money.sql": BASE_FILES["macros/money.sql"].replace("* 100", "* 100.0")})
    after = fingerprints(project)
    # orders calls cents directly, customer_dollars through dollars(); the rest by lineage.
    assert own_input_changed(before, after) == {"orders", "customer_dollars"}
    assert changed(before, after) == {"orders", "customer_dollars", "revenue", "big_spenders"}


def test_a_var_changes_exactly_the_models_that_read_it(project: Path) -> None:
    before = fingerprints(project)
    after = fingerprints(project, {"min_amount": 25})
    assert own_input_changed(before, after) == {"orders"}
    assert changed(before, after) == {"orders", "revenue", "big_spenders"}


def test_a_var_read_through_a_macro_changes_its_readers(project: Path) -> None:
    before = fingerprints(project)
    after = fingerprints(project, {"big_spender_cents": 5})
    assert changed(before, after) == {"big_spenders"}


def test_a_var_nobody_reads_changes_nothing(project: Path) -> None:
    before = fingerprints(project)
    assert changed(before, fingerprints(project, {"unused_var": 99, "brand_new": "x"})) == set()


def test_equal_parameters_give_equal_fingerprints_across_environments(project: Path) -> None:
    dev = fingerprints(project, {"min_amount": 5})
    (project / "target").rename(project / "target_dev")  # a second environment parses cold
    prod = fingerprints(project, {"min_amount": 5})
    assert {k: v.digest for k, v in dev.items()} == {k: v.digest for k, v in prod.items()}


def test_env_vars_are_read_like_vars(project: Path) -> None:
    write_files(project, {"models/region.sql": "select '{{ env_var('SHOP_REGION', 'eu') }}' as region\n"})
    before = fingerprints(project, environ={"SHOP_REGION": "eu"})
    after = fingerprints(project, environ={"SHOP_REGION": "us"})
    assert changed(before, after) == {"region"}


def test_placement_and_metadata_do_not_change_fingerprints(project: Path) -> None:
    before = fingerprints(project)
    schema = BASE_FILES["models/schema.yml"].replace(
        "  - name: orders\n",
        "  - name: orders\n    description: every order\n"
        "    config:\n      tags: [finance]\n      schema: marts\n",
    )
    write_files(project, {"models/schema.yml": schema})
    assert changed(before, fingerprints(project)) == set()


def test_whitespace_edits_count_as_changes(project: Path) -> None:
    # dbt strips a file's leading and trailing whitespace; any edit inside counts.
    before = fingerprints(project)
    write_files(project, {"models/revenue.sql": BASE_FILES["models/revenue.sql"] + "\n\n"})
    assert changed(before, fingerprints(project)) == set()
    write_files(
        project, {"models/revenue.sql": BASE_FILES["models/revenue.sql"].replace(" from", "\n  from")}
    )
    assert changed(before, fingerprints(project)) == {"revenue", "big_spenders"}


def test_seed_content_is_fingerprinted(project: Path) -> None:
    before = fingerprints(project)
    write_files(project, {"seeds/raw_orders.csv": BASE_FILES["seeds/raw_orders.csv"] + "4,2,99\n"})
    assert changed(before, fingerprints(project)) == {
        "raw_orders",
        "stg_orders",
        "orders",
        "revenue",
        "big_spenders",
    }


def test_config_change_is_a_change(project: Path) -> None:
    before = fingerprints(project)
    write_files(
        project,
        {"models/revenue.sql": "{{ config(materialized='table') }}\n" + BASE_FILES["models/revenue.sql"]},
    )
    assert "revenue" in changed(before, fingerprints(project))
