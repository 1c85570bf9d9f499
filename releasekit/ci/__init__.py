"""CI for releasekit projects: the workflow files `releasekit ci init` writes from the
templates in ci-templates/, and the pull-request comment `releasekit ci comment` keeps.

Light on purpose: the CLI reads the default below without loading the rest.
"""

DEFAULT_PYTHON = "3.11"  # the Python CI jobs run releasekit on, unless `--python` says otherwise
