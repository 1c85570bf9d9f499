"""What a piece of dbt Jinja reads: var() and env_var() calls, found in its syntax tree."""

from __future__ import annotations

from functools import lru_cache

import jinja2
import jinja2.nodes as jn

from releasekit.graph import Reads


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # dbt's environment knows its own tags ({% materialization %}, {% test %}, ...).
    from dbt_common.clients.jinja import get_environment

    return get_environment()


def scan_reads(source: str) -> Reads:
    """The vars and env vars `source` reads. A var name that is not a constant, or Jinja
    that does not parse, makes the reads dynamic: the caller must assume every var."""
    try:
        tree = _environment().parse(source)
    except jinja2.TemplateError:
        return Reads(dynamic_vars=True)
    vars_: set[str] = set()
    env_vars: set[str] = set()
    dynamic = False
    for call in tree.find_all(jn.Call):
        function = _called_name(call)
        if function not in ("var", "env_var"):
            continue
        name = _constant_first_arg(call)
        if name is None:
            dynamic = dynamic or function == "var"
        else:
            (vars_ if function == "var" else env_vars).add(name)
    return Reads(vars=frozenset(vars_), env_vars=frozenset(env_vars), dynamic_vars=dynamic)


def _called_name(call: jn.Call) -> str | None:
    return call.node.name if isinstance(call.node, jn.Name) else None


def _constant_first_arg(call: jn.Call) -> str | None:
    if call.args and isinstance(call.args[0], jn.Const) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None
