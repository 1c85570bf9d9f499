"""releasekit's configuration: releasekit.yml and environments/*.yml, loaded once, frozen.

`load_config` reads and validates everything (`loader` documents the precedence);
`init_project` writes a working starting point (`releasekit init`).
"""

from __future__ import annotations

from releasekit.config.loader import CONFIG_FILE, find_root, load_config
from releasekit.config.model import EnvironmentConfig, ProjectConfig
from releasekit.config.scaffold import InitResult, init_project

__all__ = [
    "CONFIG_FILE",
    "EnvironmentConfig",
    "InitResult",
    "ProjectConfig",
    "find_root",
    "init_project",
    "load_config",
]
