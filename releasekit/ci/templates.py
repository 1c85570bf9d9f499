"""The CI templates (ci-templates/ in the checkout, releasekit/resources/ci-templates in the
wheel) and their rendering.

They are Jinja2 with delimiters of their own: `<@ value @>`, `<% block %>` and
`<# comment #>`. GitHub's `${{ }}`, GitLab's `$VAR` and bash's `${#x}` pass through
untouched. An undefined name is an error, never an empty string. The `yaml` filter quotes a
value as a YAML scalar (a JSON string is one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2

PLATFORMS = ("github", "gitlab")


@dataclass(frozen=True)
class Rendered:
    name: str  # the template's file name, e.g. releasekit-pr.yml
    text: str


def template_root() -> Traversable:
    """The CI templates: in the wheel, else in the source checkout."""
    packaged = files("releasekit") / "resources" / "ci-templates"
    if packaged.is_dir():
        return packaged
    # Editable installs run from the checkout, whose top level holds ci-templates/.
    checkout = Path(__file__).resolve().parents[2] / "ci-templates"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"releasekit's CI templates are missing: {checkout}")


def render(platform: str, variables: Mapping[str, Any]) -> list[Rendered]:
    """Every template of `platform`, filled in, in name order."""
    folder = template_root() / platform
    sources = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".yml")
    }
    environment = _environment(sources)
    return [Rendered(name, environment.get_template(name).render(variables)) for name in sorted(sources)]


def yaml_scalar(value: object) -> str:
    """`value` as a double-quoted YAML scalar: nothing in it can end the string or start
    another node."""
    return json.dumps(str(value))


def _environment(sources: Mapping[str, str]) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.DictLoader(dict(sources)),
        variable_start_string="<@",
        variable_end_string="@>",
        block_start_string="<%",
        block_end_string="%>",
        comment_start_string="<#",
        comment_end_string="#>",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML: values are quoted with the `yaml` filter where needed
    )
    environment.filters["yaml"] = yaml_scalar
    return environment
