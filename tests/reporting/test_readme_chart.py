"""The README's control chart is what releasekit draws: releasekit's own statistics over a
daily history of a growing orders table, with a held-back drop and an accepted backfill.
Regenerate it with `python -m tests.reporting.test_readme_chart` from the repository."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matplotlib.image import imread

from releasekit.reporting.spc_chart import ChartPoint, write_chart
from releasekit.spc.model import Observation, Settings
from releasekit.spc.stats import judge

README_CHART = Path(__file__).parents[2] / "releasekit" / "resources" / "spc-chart.png"
HELD_DAY, ACCEPTED_DAY = 25, 40


def history() -> list[ChartPoint]:
    """60 daily refreshes: ~18,000 new rows a day; day 25 lost 90% of the table (held back);
    day 40 brought a backfill of 400,000 rows, accepted as a new baseline."""
    rng = random.Random(11)
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    rows, points = 1_200_000.0, []
    published: list[Observation] = []
    for day in range(60):
        at = (start + timedelta(days=day)).isoformat()
        if day == HELD_DAY:
            points.append(ChartPoint(judge(published, Observation(rows * 0.1, at), Settings()), False))
            continue
        rows += rng.gauss(18_000, 1_500) + (400_000 if day == ACCEPTED_DAY else 0)
        point = Observation(rows, at)
        accepted = day == ACCEPTED_DAY
        points.append(ChartPoint(judge(published, point, Settings()), True, accepted))
        published = [point] if accepted else [*published, point]
    return points


def draw(path: Path) -> Path:
    subtitle = "growth baseline · last 30 published points · limits at 3 sigma"
    return write_chart(path, "prod · orders · row_count", history(), subtitle=subtitle)


def test_the_readme_chart_shows_a_held_drop_and_an_accepted_backfill(tmp_path: Path) -> None:
    points = history()
    flagged = {i: p.verdict.rules for i, p in enumerate(points) if p.verdict.anomalous}
    assert flagged == {HELD_DAY: ("beyond_limits",), ACCEPTED_DAY: ("beyond_limits",)}
    assert not points[HELD_DAY].published and points[ACCEPTED_DAY].accepted
    assert points[ACCEPTED_DAY + 1].verdict.limits is None  # the new baseline is too short yet
    assert imread(draw(tmp_path / "chart.png")).shape == imread(README_CHART).shape


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else README_CHART))
