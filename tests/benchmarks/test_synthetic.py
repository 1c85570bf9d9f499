from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .synthetic import SyntheticProject, generate_project

DBT = Path(sys.executable).parent / "dbt"


def _dbt_build(project: SyntheticProject, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [str(DBT), "build", "--profiles-dir", ".", *extra],
        cwd=project.project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _model_files(project: SyntheticProject) -> dict[str, str]:
    return {name: project.model_path(name).read_text() for name in project.models}


def test_layers_hold_the_requested_models_in_a_layered_dag(tmp_path: Path) -> None:
    project = generate_project(tmp_path, models=200, rows=1000)

    assert len(project.models) == len(set(project.models)) == 200
    assert len(project.layers) == 6
    assert all(project.parents[name] == () for name in project.layers[0])
    for depth, layer in enumerate(project.layers[1:], start=2):
        for name in layer:
            parent_layers = [project.layer_of(parent) for parent in project.parents[name]]
            assert 1 <= len(parent_layers) <= 3
            assert max(parent_layers) == depth - 1  # so the model sits exactly at this depth
            sql = project.model_path(name).read_text()
            assert all(f"ref('{parent}')" in sql for parent in project.parents[name])


def test_generation_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = generate_project(tmp_path / "a", models=40, rows=1000, seed=5)
    second = generate_project(tmp_path / "b", models=40, rows=1000, seed=5)
    other = generate_project(tmp_path / "c", models=40, rows=1000, seed=6)

    assert first.parents == second.parents
    assert _model_files(first) == _model_files(second)
    assert _model_files(first) != _model_files(other)


@pytest.mark.parametrize(("models", "bound"), [(200, 5), (200, 2), (20, 5)])
def test_pick_mid_model_respects_the_descendant_bound(tmp_path: Path, models: int, bound: int) -> None:
    project = generate_project(tmp_path, models=models, rows=1000)

    mid = project.pick_mid_model(max_descendants=bound)
    assert 1 <= len(project.descendants(mid)) <= bound
    assert 1 < project.layer_of(mid) < len(project.layers)


def test_edit_model_changes_the_sql_every_time(tmp_path: Path) -> None:
    project = generate_project(tmp_path, models=20, rows=1000)
    mid = project.pick_mid_model()
    original = project.model_path(mid).read_text()

    project.edit_model(mid)
    once = project.model_path(mid).read_text()
    project.edit_model(mid)

    assert original != once != project.model_path(mid).read_text()


def test_refuses_to_generate_over_a_project(tmp_path: Path) -> None:
    generate_project(tmp_path, models=10, rows=100)

    with pytest.raises(FileExistsError):
        generate_project(tmp_path, models=10, rows=100)


@pytest.mark.integration
def test_small_project_builds_and_a_mid_model_edit_rebuilds(tmp_path: Path) -> None:
    project = generate_project(tmp_path, models=20, rows=10_000)

    full = _dbt_build(project)
    assert full.returncode == 0, full.stdout[-3000:]
    mid = project.pick_mid_model()
    project.edit_model(mid)
    partial = _dbt_build(project, "--select", f"{mid}+")
    assert partial.returncode == 0, partial.stdout[-3000:]
