"""Benchmark: releasekit's lint step (changed files only) against sqlfluff's CLI over every
model, on one synthetic project, in the same run.

Run: pytest -m benchmark -s tests/benchmarks/test_lint_benchmark.py
Size: RELEASEKIT_BENCH_MODELS (default 200). The report (JSON) is printed and written to
RELEASEKIT_BENCH_OUT (default: the test's tmp folder) as lint_benchmark.json.

Every figure is a whole command run as a subprocess (interpreter start and imports
included), so the ratios compare what a user waits for; `lint_seconds` is the part spent
inside `releasekit.lint.lint()`. CPU seconds count the command and the worker processes
it waited for. Both tools read the same `.sqlfluff` (dialect duckdb, Jinja templater with
dbt builtins), and the benchmark checks they report the same violations for every file.

Besides the headline figures it sweeps file counts at 1 and 2 worker processes: the
evidence behind releasekit.lint.linter.PARALLEL_FROM on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .synthetic import SyntheticProject, generate_project

pytestmark = pytest.mark.benchmark

BIN = Path(sys.executable).parent
MODELS = int(os.environ.get("RELEASEKIT_BENCH_MODELS", "200"))
SWEEP = (2, 8, 16, 32)
SQLFLUFF_CONFIG = "[sqlfluff]\ndialect = duckdb\ntemplater = jinja\n"

# One lint step as `releasekit check` will run it: find the changed files, lint them.
LINT_SCRIPT = """
import json, sys, time
from pathlib import Path
from releasekit.gitops.repo import GitRepo
from releasekit.lint import lint

root, mode, arg, processes = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
start = time.perf_counter()
if mode == "changed":
    changed = GitRepo(root).changed_since(arg)
    files = [c.path for c in changed if c.path.endswith(".sql") and not c.deleted]
else:
    files = sorted(p.relative_to(root).as_posix() for p in (root / "models").rglob("*.sql"))[: int(arg)]
found = time.perf_counter() - start
run = lint(root, files, dialect="duckdb", processes=None if processes == "auto" else int(processes))
print(json.dumps({
    "files": len(run.files),
    "processes": run.processes,
    "find_seconds": found,
    "lint_seconds": run.seconds,
    "violations": {f.path: sorted([v.line, v.column, v.code] for v in f.violations) for f in run.files},
}))
"""


def timed(args: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the command and the children it waited for), stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode in ok, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def with_branch_change(project: SyntheticProject) -> tuple[str, str]:
    """Commit the project on main, change one mid-DAG model on a branch; (main sha, model)."""
    root = project.project_dir
    (root / ".sqlfluff").write_text(SQLFLUFF_CONFIG)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "synthetic project")
    base = git(root, "rev-parse", "HEAD")
    git(root, "switch", "-q", "-c", "feature")
    changed = project.pick_mid_model(max_descendants=5)
    project.edit_model(changed)
    git(root, "commit", "-qam", f"edit {changed}")
    return base, changed


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.lint_seconds: dict[str, float] = {}

    def releasekit(self, label: str, mode: str, arg: str, processes: str) -> dict[str, Any]:
        args = [sys.executable, "-c", LINT_SCRIPT, str(self.root), mode, arg, processes]
        self.seconds[label], self.cpu[label], out = timed(args, self.root)
        result: dict[str, Any] = json.loads(out)
        self.lint_seconds[label] = round(result["find_seconds"] + result["lint_seconds"], 2)
        return result

    def sqlfluff(self, label: str, processes: int) -> dict[str, list[list[Any]]]:
        args = [str(BIN / "sqlfluff"), "lint", "models", "--format", "json", "--processes", str(processes)]
        self.seconds[label], self.cpu[label], out = timed(args, self.root, ok=(0, 1))
        return {
            entry["filepath"]: sorted(
                [v["start_line_no"], v["start_line_pos"], v["code"]] for v in entry["violations"]
            )
            for entry in json.loads(out)
        }


def test_lint_changed_files_against_sqlfluff_cli(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "project", models=MODELS, rows=1000)
    base, changed = with_branch_change(project)
    load_before = os.getloadavg()
    bench = Bench(project.project_dir)

    one = bench.releasekit("releasekit lint: changed files only", "changed", base, "auto")
    cli_serial = bench.sqlfluff("sqlfluff lint models (CLI, 1 process)", 1)
    cli_parallel = bench.sqlfluff("sqlfluff lint models (CLI, --processes 2)", 2)
    ours_parallel = bench.releasekit(
        "releasekit lint: all models (auto processes)", "all", str(MODELS), "auto"
    )
    ours_serial = bench.releasekit("releasekit lint: all models (1 process)", "all", str(MODELS), "1")
    for count in (n for n in SWEEP if n < MODELS):
        for processes in ("1", "2"):
            bench.releasekit(
                f"releasekit lint: {count} files, {processes} process(es)", "all", str(count), processes
            )

    # Same config, same files: the same violations, file by file.
    assert one["files"] == 1 and one["processes"] == 1
    assert ours_parallel["processes"] == min(os.cpu_count() or 1, MODELS)
    assert ours_serial["violations"] == ours_parallel["violations"] == cli_serial == cli_parallel

    s = bench.seconds
    report = {
        "models": MODELS,
        "cpus": os.cpu_count(),
        "load_average_before_after": [round(x, 1) for x in (*load_before, *os.getloadavg())],
        "changed_model": changed,
        "violations_all_models": sum(len(v) for v in cli_serial.values()),
        "same_violations_as_sqlfluff_cli": True,
        "seconds": {k: round(v, 2) for k, v in s.items()},
        "cpu_seconds": {k: round(v, 2) for k, v in bench.cpu.items()},
        "inside_lint_seconds": bench.lint_seconds,
        "changed_only_speedup_vs_cli_all_serial": round(
            s["sqlfluff lint models (CLI, 1 process)"] / s["releasekit lint: changed files only"], 1
        ),
        "our_parallel_all_speedup_vs_cli_serial": round(
            s["sqlfluff lint models (CLI, 1 process)"] / s["releasekit lint: all models (auto processes)"], 2
        ),
        "our_parallel_all_speedup_vs_cli_parallel": round(
            s["sqlfluff lint models (CLI, --processes 2)"]
            / s["releasekit lint: all models (auto processes)"],
            2,
        ),
        "our_parallel_speedup_vs_our_serial": round(
            s["releasekit lint: all models (1 process)"] / s["releasekit lint: all models (auto processes)"],
            2,
        ),
    }
    print("\n" + json.dumps(report, indent=2))
    out = Path(os.environ.get("RELEASEKIT_BENCH_OUT", tmp_path)) / "lint_benchmark.json"
    out.write_text(json.dumps(report, indent=2))
