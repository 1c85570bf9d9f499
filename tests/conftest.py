"""Settings every test shares: hypothesis keeps its files (example database, unicode
tables) under .cache/ with the other tools' caches, not in a .hypothesis/ folder at the
repository's top."""

from __future__ import annotations

from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(__file__).resolve().parents[1] / ".cache" / "hypothesis")
