from __future__ import annotations

import random
import warnings
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from matplotlib.image import imread
from matplotlib.ticker import MaxNLocator

from releasekit.errors import ReleasekitError
from releasekit.reporting.spc_chart import ChartPoint, readable_ticks, write_chart
from releasekit.spc.model import Verdict
from tests.support.spc_series import at, plain_series, row_count_series

SVG = "{http://www.w3.org/2000/svg}"
TITLE = "prod · orders · row_count"
SUBTITLE = "baseline: growth, 30 points, 3 sigma"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def svg_of(tmp_path: Path, points: list[ChartPoint], name: str = "chart.svg") -> ET.Element:
    path = write_chart(tmp_path / name, TITLE, points, subtitle=SUBTITLE)
    return ET.fromstring(path.read_bytes())


def group(root: ET.Element, gid: str) -> ET.Element:
    return next(element for element in root.iter() if element.get("id") == gid)


def markers(element: ET.Element) -> int:
    """Markers are drawn as <use> references to one marker shape."""
    return len(element.findall(f".//{SVG}use"))


def texts(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def test_png_is_a_900_by_450_image(tmp_path: Path) -> None:
    path = write_chart(tmp_path / "chart.png", TITLE, row_count_series(), subtitle=SUBTITLE)

    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE)
    assert imread(path).shape == (450, 900, 4)
    assert b"tEXt" not in content and b"tIME" not in content  # no software or date stamp


def test_svg_carries_the_title_and_one_marker_per_flagged_point(tmp_path: Path) -> None:
    points = row_count_series()
    flagged = [point for point in points if point.verdict.anomalous]

    root = svg_of(tmp_path, points)

    assert {TITLE, SUBTITLE} <= set(texts(root))
    groups = [element for element in root.iter() if element.get("id", "").startswith("flagged-")]
    assert len(groups) == len(flagged) == 2
    assert all(markers(element) == 1 for element in groups)
    assert texts(root).count("beyond limits") == 2


def test_held_back_points_are_apart_from_the_published_line(tmp_path: Path) -> None:
    points = row_count_series()

    root = svg_of(tmp_path, points)

    assert markers(group(root, "published")) == sum(point.published for point in points) == 49
    assert markers(group(root, "held-back")) == 1
    assert "held back (never served)" in texts(root)


def test_an_accepted_point_is_marked_as_a_new_baseline(tmp_path: Path) -> None:
    root = svg_of(tmp_path, row_count_series())

    group(root, "accepted-0")
    assert "accepted: new baseline" in texts(root)
    assert not any(element.get("id") == "accepted-1" for element in root.iter())


def test_points_without_limits_say_there_is_not_enough_history(tmp_path: Path) -> None:
    young = svg_of(tmp_path, plain_series([100, 101, 99], judged_from=3), "young.svg")
    judged = svg_of(tmp_path, plain_series([100, 101, 99], judged_from=1), "judged.svg")

    assert "not enough history yet: no control limits" in texts(young)
    assert not any(element.get("id") == "limits" for element in young.iter())
    assert "not enough history yet: no control limits" not in texts(judged)
    group(judged, "limits")
    group(judged, "centre")


def test_the_same_points_give_the_same_bytes(tmp_path: Path) -> None:
    points = row_count_series()
    for suffix in (".svg", ".png"):
        first = write_chart(tmp_path / f"a{suffix}", TITLE, points, subtitle=SUBTITLE).read_bytes()
        second = write_chart(tmp_path / f"b{suffix}", TITLE, points, subtitle=SUBTITLE).read_bytes()
        assert first == second


def test_points_are_drawn_in_time_order_whatever_order_they_come_in(tmp_path: Path) -> None:
    points = row_count_series()
    shuffled = random.Random(3).sample(points, len(points))

    in_order = write_chart(tmp_path / "a.svg", TITLE, points).read_bytes()
    assert write_chart(tmp_path / "b.svg", TITLE, shuffled).read_bytes() == in_order


def test_charts_drawn_at_once_from_threads_are_the_same_as_one_by_one(tmp_path: Path) -> None:
    points = row_count_series()
    alone = write_chart(tmp_path / "alone.svg", TITLE, points).read_bytes()

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda n: write_chart(tmp_path / f"{n}.svg", TITLE, points), range(8)))

    assert all(path.read_bytes() == alone for path in paths)


def test_a_single_point_is_drawn_without_warnings(tmp_path: Path) -> None:
    points = [ChartPoint(Verdict(0.0, at(0), None), False)]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        root = svg_of(tmp_path, points)

    assert markers(group(root, "held-back")) == 1
    assert "not enough history yet: no control limits" in texts(root)


@pytest.mark.parametrize("name", ["chart.pdf", "chart.jpg", "chart", "chart.svg.txt"])
def test_an_unsupported_file_type_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ReleasekitError, match="unsupported file type") as caught:
        write_chart(tmp_path / name, TITLE, row_count_series())

    assert caught.value.hint is not None
    assert ".png" in caught.value.hint and ".svg" in caught.value.hint
    assert list(tmp_path.iterdir()) == []


def test_upper_case_extensions_are_understood(tmp_path: Path) -> None:
    path = write_chart(tmp_path / "chart.PNG", TITLE, row_count_series())

    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_no_points_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReleasekitError, match="no points to chart"):
        write_chart(tmp_path / "chart.png", TITLE, [])

    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(ReleasekitError, match="does not exist") as caught:
        write_chart(tmp_path / "charts" / "chart.svg", TITLE, row_count_series())

    assert caught.value.hint == f"create it first: mkdir -p {tmp_path / 'charts'}"
    assert not (tmp_path / "charts").exists()


def test_a_time_that_is_not_iso_8601_is_an_error(tmp_path: Path) -> None:
    points = [ChartPoint(Verdict(1.0, at(0), None), True), ChartPoint(Verdict(2.0, "yesterday", None), True)]

    with pytest.raises(ReleasekitError, match="not an ISO 8601 time: 'yesterday'"):
        write_chart(tmp_path / "chart.svg", TITLE, points)


def test_times_with_offsets_are_drawn_in_utc(tmp_path: Path) -> None:
    utc = [ChartPoint(Verdict(float(n), f"2025-03-0{n + 1}T06:00:00Z", None), True) for n in range(3)]
    paris = [ChartPoint(Verdict(float(n), f"2025-03-0{n + 1}T07:00:00+01:00", None), True) for n in range(3)]

    assert (
        write_chart(tmp_path / "utc.svg", TITLE, utc).read_bytes()
        == write_chart(tmp_path / "paris.svg", TITLE, paris).read_bytes()
    )


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        ([1_000_000, 1_500_000, 2_000_000], ["1.0M", "1.5M", "2.0M"]),
        ([2_000_000, 2_000_500, 2_001_000], ["2.0000M", "2.0005M", "2.0010M"]),
        ([850_000, 900_000], ["850k", "900k"]),
        ([-5e9, 0, 5e9], ["-5B", "0", "5B"]),
        ([0, 2.5, 5, 7.5], ["0", "2.5", "5.0", "7.5"]),
        ([0.1, 0.2, 0.30000000000000004], ["0.1", "0.2", "0.3"]),
        ([0.001, 0.002, 0.004], ["0.001", "0.002", "0.004"]),
        ([0, 1e-7, 2e-7, 2.5e-7], ["0", "1.0e-07", "2.0e-07", "2.5e-07"]),
        ([0, 0], ["0", "0"]),
    ],
)
def test_axis_numbers_read_as_people_write_them(values: list[float], labels: list[str]) -> None:
    assert readable_ticks(values) == labels


@given(st.floats(-1e13, 1e13), st.floats(1e-8, 1e13))
def test_neighbouring_ticks_never_read_the_same(low: float, span: float) -> None:
    assume(span > abs(low) * 1e-6)
    ticks = [float(v) for v in MaxNLocator().tick_values(low, low + span)]

    labels = readable_ticks(ticks)

    assert len(set(labels)) == len(labels)
