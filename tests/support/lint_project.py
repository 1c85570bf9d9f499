"""Helpers shared by the lint adapter's tests (conftest.py holds the fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MakeProject = Callable[..., Path]


def codes(run_or_file: object) -> list[str]:
    """Rule codes of a FileLint's or LintRun's violations, in order."""
    return [v.code for v in getattr(run_or_file, "violations", ())]
