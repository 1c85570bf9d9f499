"""A control chart of one metric's SPC verdicts, as a PNG or SVG file.

The only module of releasekit that imports matplotlib. It draws with the object-oriented
API on an Agg canvas: no pyplot, no display, no global figure registry. matplotlib is not
thread-safe (its font and text caches are shared), and the style this module draws with is
set through rcParams, so a lock lets one chart be drawn at a time, in matplotlib's default
style whatever the user's matplotlibrc says.

Same points, same bytes: SVG ids are salted with a fixed string and neither format carries
a date; the PNG carries no software stamp either (the SVG keeps matplotlib's Creator).

What is drawn, over the time of each point (UTC): the published values as a line with
markers; held-back values (never served) as hollow markers off the line; each point's own
centre line and control limits as steps (they move as the history grows); points that
broke rules in red, larger, with the rules' short names; a dashed line where a user
accepted a point as a new baseline. SVG artists carry ids (`published`, `held-back`,
`flagged-<n>`, `accepted-<n>`, `centre`, `limits`) for tools and tests to find them.
"""

from __future__ import annotations

import io
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib import rc_context, style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter

from releasekit.errors import ReleasekitError
from releasekit.spc.model import Limits, Verdict

FORMATS = {".png": "png", ".svg": "svg"}
SIZE = (9.0, 4.5)  # inches; at DPI, 900 x 450 pixels
DPI = 100
SHORT_RULES = {
    "beyond_limits": "beyond limits",
    "left_zero": "left zero",
    "two_of_three": "2 of 3",
    "four_of_five": "4 of 5",
    "run_of_eight": "run of 8",
}
_BLUE, _RED, _GREEN, _GREY = "#1f5fa8", "#c8102e", "#2e7d32", "#555555"
_LIMIT = "#8a8a8a"
_SERVED: dict[str, Any] = {"color": _BLUE, "marker": "o", "markersize": 3.5, "linewidth": 1.4}
_HOLLOW: dict[str, Any] = {"linestyle": "none", "marker": "o", "markersize": 7, "markeredgewidth": 1.6}
_HELD = {**_HOLLOW, "markerfacecolor": "white", "markeredgecolor": _GREY}
_FLAGGED = {**_HOLLOW, "markeredgecolor": _RED}
_LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1}
_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ChartPoint:
    verdict: Verdict  # the point judged against the history before it
    published: bool  # False: a held-back version (never served)
    accepted: bool = False  # a user accepted it (a new baseline starts here)


def write_chart(path: Path, title: str, points: Sequence[ChartPoint], *, subtitle: str = "") -> Path:
    """Draw `points` (in any order: they are sorted by time) to `path`, a .png or .svg file
    whose folder exists, and return `path`."""
    fmt = _format_of(path)
    if not points:
        raise ReleasekitError(
            f"no points to chart for {title!r}", hint="a control chart needs at least one verdict"
        )
    ordered = sorted(points, key=lambda point: _time_of(point.verdict))
    with (
        _LOCK,
        style.context("default"),
        rc_context({"svg.hashsalt": "releasekit", "svg.fonttype": "none", "font.size": 9.0}),
    ):
        content = _render(fmt, title, subtitle, ordered)
    _write(path, content)
    return path


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ReleasekitError(
            f"cannot write a chart to {str(path)!r}: unsupported file type {path.suffix or '(none)'!r}",
            hint=f"name the file with one of {', '.join(FORMATS)}",
        )
    return fmt


def _time_of(verdict: Verdict) -> datetime:
    try:
        at = datetime.fromisoformat(verdict.at)
    except ValueError:
        raise ReleasekitError(
            f"not an ISO 8601 time: {verdict.at!r}", hint="verdict times look like 2025-01-31T06:00:00Z"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _write(path: Path, content: bytes) -> None:
    # Rendered to memory first: a failure to write leaves no half-drawn file behind.
    if not path.parent.is_dir():
        raise ReleasekitError(
            f"cannot write the chart {str(path)!r}: the folder {str(path.parent)!r} does not exist",
            hint=f"create it first: mkdir -p {path.parent}",
        )
    try:
        path.write_bytes(content)
    except OSError as error:
        raise ReleasekitError(f"cannot write the chart {str(path)!r}: {error.strerror or error}") from error


def _render(fmt: str, title: str, subtitle: str, points: Sequence[ChartPoint]) -> bytes:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    times = _days([_time_of(point.verdict) for point in points])
    handles = _draw_limits(ax, times, points) + _draw_values(ax, times, points)
    _draw_accepted(ax, times, points)
    if times[0] == times[-1]:
        # One moment only: a day either side, not the years the date axis would pick.
        ax.set_xlim(times[0] - 1, times[0] + 1)
    _decorate(fig, ax, title, subtitle, handles, any(p.verdict.limits for p in points))
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {"Software": None}
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def _days(times: list[datetime]) -> list[float]:
    """matplotlib's date numbers (days since its epoch), which its date axis reads."""
    return [float(day) for day in date2num(times)]  # type: ignore[no-untyped-call]


def _draw_limits(ax: Axes, times: list[float], points: Sequence[ChartPoint]) -> list[Any]:
    """Each point's own limits as a step spanning half-way to its neighbours; gaps where a
    point had none (too little history, or a new baseline's first points)."""
    limits = [point.verdict.limits for point in points]
    if not any(limits):
        return []
    edges = _edges(times)
    xs = [edge for i in range(len(times)) for edge in (edges[i], edges[i + 1])]

    def steps(value: Callable[[Limits], float]) -> list[float]:
        return [value(lim) if lim else math.nan for lim in limits for _ in (0, 1)]

    lower, upper = steps(lambda lim: lim.lower), steps(lambda lim: lim.upper)
    ax.fill_between(xs, lower, upper, color=_BLUE, alpha=0.15, linewidth=0, gid="band")
    ax.plot(xs, steps(lambda lim: lim.centre), color=_GREY, linewidth=1, linestyle="--", gid="centre")
    ax.plot(xs, upper, color=_LIMIT, linewidth=0.8, gid="limits")
    ax.plot(xs, lower, color=_LIMIT, linewidth=0.8, gid="limits-lower")
    return [
        Line2D([], [], color=_GREY, linestyle="--", linewidth=1, label="centre line"),
        Patch(facecolor=(0.12, 0.37, 0.66, 0.15), edgecolor=_LIMIT, label="control limits"),
    ]


def _edges(times: list[float]) -> list[float]:
    """Where each point's step starts and ends: half-way to its neighbours; the ends reach
    as far out as the nearest gap (half a day for a lone point)."""
    middles = [a + (b - a) / 2 for a, b in itertools.pairwise(times)]
    first = times[0] - (middles[0] - times[0] if middles else 0.5)
    last = times[-1] + (times[-1] - middles[-1] if middles else 0.5)
    return [first, *middles, last]


def _draw_values(ax: Axes, times: list[float], points: Sequence[ChartPoint]) -> list[Any]:
    handles: list[Any] = []
    for published, look, gid, label in (
        (True, _SERVED, "published", "published"),
        (False, _HELD, "held-back", "held back (never served)"),
    ):
        xy = [(t, p.verdict.value) for t, p in zip(times, points, strict=True) if p.published == published]
        if xy:
            ax.plot([x for x, _ in xy], [y for _, y in xy], **look, gid=gid)
            handles.append(Line2D([], [], **look, label=label))
    if _draw_flags(ax, times, points):
        handles.append(Line2D([], [], **_FLAGGED, markerfacecolor=_RED, label="broke a rule"))
    return handles


def _draw_flags(ax: Axes, times: list[float], points: Sequence[ChartPoint]) -> int:
    """Mark the points that broke rules (hollow if held back), name the rules; return how many."""
    flagged = run = 0
    for at, point in zip(times, points, strict=True):
        run = run + 1 if point.verdict.anomalous else 0
        if not run:
            continue
        face = _RED if point.published else "white"
        ax.plot(
            [at], [point.verdict.value], **_FLAGGED, markerfacecolor=face, zorder=4, gid=f"flagged-{flagged}"
        )
        rules = ", ".join(SHORT_RULES.get(rule, rule) for rule in point.verdict.rules)
        above = run % 2 == 1  # flagged neighbours take turns above and below: labels do not collide
        ax.annotate(
            rules,
            (at, point.verdict.value),
            xytext=(0, 7 if above else -7),
            textcoords="offset points",
            ha="center",
            va="bottom" if above else "top",
            color=_RED,
            fontsize=7.5,
            bbox=_LABEL_BOX,
            gid=f"flag-label-{flagged}",
        )
        flagged += 1
    return flagged


def _draw_accepted(ax: Axes, times: list[float], points: Sequence[ChartPoint]) -> None:
    accepted = [t for t, p in zip(times, points, strict=True) if p.accepted]
    for n, at in enumerate(accepted):
        ax.axvline(at, color=_GREEN, linestyle="--", linewidth=1.2, gid=f"accepted-{n}")
        ax.annotate(
            "accepted: new baseline",
            (at, 0),
            xycoords=("data", "axes fraction"),
            xytext=(-5, 4),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="bottom",
            color=_GREEN,
            fontsize=7.5,
            bbox=_LABEL_BOX,
        )


def _decorate(fig: Figure, ax: Axes, title: str, subtitle: str, handles: list[Any], judged: bool) -> None:
    if subtitle:
        under = ax.set_title(subtitle, loc="left", fontsize=9, color=_GREY)
        # Anchored to the subtitle, so the title sits above it and the layout makes room.
        ax.annotate(
            title,
            (0, 1),
            xycoords=under,
            xytext=(0, 4),
            textcoords="offset points",
            va="bottom",
            fontsize=12,
            fontweight="bold",
            gid="title",
        )
    else:
        ax.set_title(title, loc="left", fontsize=12, fontweight="bold", gid="title")
    if not judged:
        ax.text(
            0.5,
            0.95,
            "not enough history yet: no control limits",
            transform=ax.transAxes,
            ha="center",
            va="top",
            color=_GREY,
            fontsize=10,
            style="italic",
        )
    locator = AutoDateLocator(tz=UTC, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlabel("time of the version (UTC)", color=_GREY)
    ax.yaxis.set_major_formatter(_Readable())
    ax.margins(x=0.02, y=0.1)  # room for the labels of points at the edges
    ax.grid(True, color="#e4e4e4", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=8)


def readable_ticks(values: Sequence[float]) -> list[str]:
    """Axis labels as people write numbers: 1.25M, 850k, 0.004, 2.5e-07, with as many
    decimals as the ticks need, so neighbouring ticks never read the same."""
    big = max((abs(v) for v in values), default=0.0)
    if big == 0:
        return ["0" for _ in values]
    if big < 1e-3:
        unit = 10.0 ** math.floor(math.log10(big))
        return [_tiny(v, _decimals([v / unit for v in values])) for v in values]
    scale, suffix = next(((s, x) for s, x in _SUFFIXES if big >= s), (1.0, ""))
    decimals = _decimals([v / scale for v in values])
    return ["0" if v == 0 else f"{v / scale:,.{decimals}f}{suffix}" for v in values]


def _tiny(value: float, decimals: int) -> str:
    return "0" if value == 0 else f"{value:.{decimals}e}"


def _decimals(values: Sequence[float]) -> int:
    """The fewest decimals that write every value (nice tick values) exactly."""
    return next((d for d in range(10) if all(abs(v - round(v, d)) < 1e-9 for v in values)), 10)


class _Readable(Formatter):
    def format_ticks(self, values: Any) -> list[str]:
        return readable_ticks([float(v) for v in values])

    def __call__(self, x: float, pos: int | None = None) -> str:
        return readable_ticks([x])[0]
