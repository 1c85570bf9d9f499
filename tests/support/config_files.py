"""Config files the config tests share (imported by conftest and the tests)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

Write = Callable[[Mapping[str, str]], Path]

CONFIG = """\
version: 1
dbt:
  project_dir: transform
  profiles_dir: ci/profiles
  profile: shop
physical_schema: rk_phys
state:
  path: .rk-state
defaults:
  retention: 5
  vars: {region: eu, sample: 100}
"""

ENVIRONMENTS = {
    "environments/dev.yml": "version: 1\nbranch: main\n",
    "environments/staging.yml": "version: 1\nbranch: staging\npromotes_from: dev\n",
    "environments/prod.yml": """\
        version: 1
        schema: analytics
        target: prod
        vars: {sample: null, currency: EUR}
        branch: prod
        promotes_from: staging
        retention: 10
        """,
}
