"""Logic tests: the project's business assumptions, as SQL returning the rows that break them.

Format. One file per test, `logic_tests/**/*.sql` in the dbt project directory (beside
dbt_project.yml). A file holds one SELECT that returns the violating rows: no rows, the
test passes. Comment lines at the top may set metadata:

    -- severity: warn
    -- description: every order has a customer
    select o.order_id
    from {{ ref('orders') }} o left join {{ ref('customers') }} c using (customer_id)
    where c.customer_id is null

- name: the file name without `.sql`; unique across the folder and its subfolders.
- severity: `error` (the default) or `warn`.
- description: free text on one line.

The header is the `--` comment lines (and blank lines) before the first line of SQL. There,
`-- key: value` sets a known key; any other `-- word:` is an error naming the file and line
(so a typo such as `severty` cannot silently leave a test at severity error), and a comment
not starting with `word:` is free text.

Templating is plain Jinja in a sandbox with one function, `ref('model')` (or
`ref('package', 'model')`): it renders to the environment's consumer view
`"<schema>"."model"`, so one test runs unchanged against dev, a branch environment or
prod. dbt's macros, `var()` and `source()` are not available: a logic test reads models.

Why `logic_tests/`, not `tests/logic/`: dbt parses every .sql file under its test-paths
(default `tests/`, subfolders included, only `tests/generic` and `tests/fixtures` apart) as
a singular data test, so `tests/logic/*.sql` would also run inside `dbt build`, against
physical names, as dbt tests that ignore this header. dbt reads no folder it is not told
about, so `logic_tests/` beside `models/` is left to releasekit; `discover` refuses a
dbt_project.yml whose SQL paths overlap it.

Running: each test goes through `Warehouse.query`: one SELECT, in a read-only transaction,
so a logic test cannot change the warehouse. What stops one test (an unknown model, bad
Jinja, an SQL error, a timeout) is that test's outcome, with `error` set; only metadata
errors stop `discover` (ProjectError). Turning outcomes into report findings is the
caller's business.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from releasekit.checks.report import Severity
from releasekit.config.safe_yaml import load_yaml
from releasekit.errors import ProjectError, WarehouseError
from releasekit.warehouse.base import Warehouse
from releasekit.warehouse.inspection import describe_row
from releasekit.warehouse.naming import qualify

LOGIC_TESTS_DIR = "logic_tests"
DEFAULT_EXAMPLES = 5
_SEVERITIES: dict[str, Severity] = {"error": "error", "warn": "warn"}
_KEYS = ("description", "severity")
_HEADER_KEY = re.compile(r"--\s*(?P<key>[A-Za-z_][\w-]*)\s*:(?P<value>.*)")
_ROW_WIDTH = 200
# Folders in which dbt parses .sql files, with dbt's defaults (dbt-core config/project.py).
_DBT_SQL_PATHS = {
    "model-paths": ["models"],
    "source-paths": [],
    "macro-paths": ["macros"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "snapshot-paths": ["snapshots"],
    "function-paths": ["functions"],
}


@dataclass(frozen=True)
class LogicTest:
    name: str
    path: Path
    sql: str  # the file as written: a Jinja template of one SELECT
    severity: Severity = "error"
    description: str = ""


@dataclass(frozen=True)
class LogicOutcome:
    test: LogicTest
    violations: int = 0  # rows the test returned
    examples: tuple[str, ...] = ()  # its first rows, rendered `column=value, ...`
    seconds: float = 0.0
    error: str | None = None  # why it could not run; it has no verdict then
    sql: str = ""  # the SQL that ran; empty when rendering failed

    @property
    def passed(self) -> bool:
        return self.error is None and self.violations == 0


class _RenderError(Exception):
    pass


def discover(project_dir: Path, *, folder: str = LOGIC_TESTS_DIR) -> list[LogicTest]:
    """Every logic test under `project_dir / folder`, in path order; none if it is absent."""
    root = project_dir / folder
    if not root.is_dir():
        return []
    _require_apart_from_dbt(project_dir, folder)
    tests = [_read_test(path) for path in sorted(root.rglob("*.sql")) if path.is_file()]
    _require_unique_names(tests)
    return tests


def run(
    tests: Sequence[LogicTest],
    warehouse: Warehouse,
    schema: str,
    models: Collection[str],
    *,
    limit: int = DEFAULT_EXAMPLES,
    clock: Callable[[], float] = time.perf_counter,
    relations: Mapping[str, tuple[str, str]] | None = None,
) -> list[LogicOutcome]:
    """Run each test against the environment whose consumer views live in `schema` and
    serve `models`; keep at most `limit` example rows per test. `relations` (model name ->
    (schema, relation)) points `ref()` elsewhere: a refresh audits the relations it wrote
    before any view reads them."""
    if limit < 0:
        raise ValueError(f"limit cannot be negative, got {limit}")
    renderer = _Renderer(schema, frozenset(models), relations or {})
    return [_run_one(test, warehouse, renderer, limit, clock) for test in tests]


def _run_one(
    test: LogicTest, warehouse: Warehouse, renderer: _Renderer, limit: int, clock: Callable[[], float]
) -> LogicOutcome:
    started = clock()
    sql = ""
    try:
        sql = renderer.render(test)
        result = warehouse.query(sql, limit=limit)
    except _RenderError as exc:
        return LogicOutcome(test, seconds=clock() - started, error=str(exc))
    except WarehouseError as exc:
        error = exc.message if exc.hint is None else f"{exc.message} (hint: {exc.hint})"
        return LogicOutcome(test, seconds=clock() - started, error=error, sql=sql)
    examples = tuple(_cut(describe_row(result.columns, row)) for row in result.rows)
    return LogicOutcome(test, violations=result.total, examples=examples, seconds=clock() - started, sql=sql)


class _Renderer:
    """Renders a test's Jinja with `ref()` onto the consumer views of one schema."""

    def __init__(self, schema: str, models: frozenset[str], relations: Mapping[str, tuple[str, str]]) -> None:
        self._schema = schema
        self._models = models
        self._relations = relations
        self._jinja = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    def render(self, test: LogicTest) -> str:
        try:
            return self._jinja.from_string(test.sql).render(ref=self._ref)
        except _RenderError as exc:
            raise _RenderError(f"{test.path}: {exc}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise _RenderError(f"{test.path}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateError as exc:
            raise _RenderError(f"{test.path}: {exc.message} (a logic test has ref() only)") from exc

    def _ref(self, *names: Any, **options: Any) -> str:
        if options or not 1 <= len(names) <= 2 or not all(isinstance(name, str) for name in names):
            shown = ", ".join([*map(repr, names), *(f"{k}={v!r}" for k, v in options.items())])
            raise _RenderError(f"ref({shown}): write ref('model') or ref('package', 'model')")
        model = names[-1]
        if model not in self._models:
            raise _RenderError(f"ref({model!r}): the environment has no model {model!r}{self._near(model)}")
        return qualify(*self._relations[model]) if model in self._relations else qualify(self._schema, model)

    def _near(self, model: str) -> str:
        close = difflib.get_close_matches(model, sorted(self._models), n=3)
        return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def _read_test(path: Path) -> LogicTest:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: cannot read this logic test: {exc}") from exc
    meta = _header(path, text)
    return LogicTest(
        name=path.stem,
        path=path,
        sql=text,
        severity=_severity(path, meta.get("severity")),
        description=meta.get("description", (0, ""))[1],
    )


def _header(path: Path, text: str) -> dict[str, tuple[int, str]]:
    """key -> (line, value) from the `-- key: value` lines before the first line of SQL."""
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        match = _HEADER_KEY.fullmatch(stripped)
        if match is None:
            continue  # blank, or a free comment
        key, value = match["key"].lower(), match["value"].strip()
        if key not in _KEYS:
            raise _header_error(path, number, f"unknown key {match['key']!r}")
        if key in found:
            raise _header_error(path, number, f"{key!r} is set again (first on line {found[key][0]})")
        if not value:
            raise _header_error(path, number, f"{key!r} has no value")
        found[key] = (number, value)
    return found


def _severity(path: Path, entry: tuple[int, str] | None) -> Severity:
    if entry is None:
        return "error"
    line, value = entry
    severity = _SEVERITIES.get(value.lower())
    if severity is None:
        raise _header_error(path, line, f"severity must be error or warn, not {value!r}")
    return severity


def _header_error(path: Path, line: int, problem: str) -> ProjectError:
    return ProjectError(
        f"{path}:{line}: {problem} in the logic test's header",
        hint=f"header lines are `-- key: value` with key one of {', '.join(_KEYS)}; "
        "a free comment must not start with `word:`",
    )


def _require_unique_names(tests: Sequence[LogicTest]) -> None:
    seen: dict[str, Path] = {}
    for test in tests:
        if test.name in seen:
            raise ProjectError(
                f"two logic tests are named {test.name!r}: {seen[test.name]} and {test.path}",
                hint="a logic test is named after its file: rename one of them",
            )
        seen[test.name] = test.path


def _require_apart_from_dbt(project_dir: Path, folder: str) -> None:
    """Refuse a logic tests folder that dbt would also parse (or that holds dbt's SQL)."""
    config = project_dir / "dbt_project.yml"
    settings = _read_yaml(config)
    logic = (project_dir / folder).resolve()
    for key, default in _DBT_SQL_PATHS.items():
        paths = settings.get(key) or default
        for entry in paths if isinstance(paths, list) else []:
            where = (project_dir / str(entry)).resolve()
            if logic == where or where in logic.parents or logic in where.parents:
                raise ProjectError(
                    f"{config}: {key} {str(entry)!r} overlaps the logic tests folder {folder!r}: "
                    "dbt would parse logic tests as its own SQL, or releasekit dbt's SQL as logic tests",
                    hint=f"keep logic tests in {LOGIC_TESTS_DIR}/ beside models/, outside every dbt path",
                )


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectError(f"{path}: cannot read it: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _cut(text: str) -> str:
    return text if len(text) <= _ROW_WIDTH else text[: _ROW_WIDTH - 3] + "..."
