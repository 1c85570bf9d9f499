"""dbt's `var()` and `env_var()` for sqlfluff's Jinja templater, answering with real values.

sqlfluff's own dbt builtins (`ref`, `source`, `config`, `is_incremental`, `this`, ...) stay
as they are; its `var()` renders every var as the placeholder `item`, so a model reading
`{{ var('min_amount') }}` would be linted as `... >= item`. These answer with the value the
environment gives the var, as dbt would. Unknown names without a default render as
sqlfluff's placeholder `item`: a lint is no place to fail on a var dbt itself would report.

Both are plain classes (picklable: they travel to the worker processes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


class Placeholder(str):
    """What an unknown var renders as (sqlfluff's own placeholder text, `item`): a string
    that also survives `.attribute` and `[key]`, as a dict or object var would be used."""

    def __new__(cls, text: str = "item") -> Placeholder:
        return super().__new__(cls, text)

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):  # copy and pickle probe for dunders: answer as a str does
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(key) if isinstance(key, int | slice) else self


class DbtVar:
    """`var(name, default)` as dbt answers it for this project and environment."""

    # Jinja's sandbox refuses callables flagged unsafe or altering data; these are neither.
    unsafe_callable = False
    alters_data = False

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def __call__(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.values:
            return self.values[name]
        return Placeholder() if default is _MISSING else default


class DbtEnvVar:
    """`env_var(name, default)` read from the environ the caller passed."""

    unsafe_callable = False
    alters_data = False

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)

    def __call__(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.environ:
            return self.environ[name]
        return Placeholder() if default is _MISSING else default


def dbt_context(dbt_vars: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Names to put in the Jinja templater's context (they replace sqlfluff's builtins)."""
    return {"var": DbtVar(dbt_vars), "env_var": DbtEnvVar(environ)}
