"""`releasekit spc`: statistical process control of an environment's data, as tables or a
control chart."""

from __future__ import annotations

from pathlib import Path

import click

from releasekit.cli.session import CONSOLE, session
from releasekit.errors import NotFoundError


@click.command("spc")
@click.argument("env", required=False)
@click.argument("model", required=False)
@click.option("--metric", default="row_count", show_default=True, help="The metric --chart draws.")
@click.option(
    "--chart",
    "chart",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write MODEL's control chart of --metric to FILE (.png or .svg).",
)
@click.pass_context
def spc(ctx: click.Context, env: str | None, model: str | None, metric: str, chart: Path | None) -> None:
    """The measurements of ENV's data and their control limits.

    Without MODEL: one line per model and metric, its last point and verdict. With MODEL:
    each metric's recent points, centre line, limits and the rules a point broke."""
    with session(ctx) as (workspace, reporter):
        from releasekit import api
        from releasekit.reporting.spc_chart import ChartPoint, write_chart

        name = workspace.environment(env).name
        found = api.spc(workspace, name, model)
        if chart is None:
            reporter.spc(name, found, detail=model is not None)
            return
        if model is None:
            raise NotFoundError(
                "--chart draws one model's metric",
                hint=f"name the model: releasekit spc {name} MODEL --chart {chart}",
            )
        chosen = [series for series in found if series.metric == metric]
        if not chosen:
            raise NotFoundError(
                f"{model} has no judged metric {metric!r} in {name}",
                hint=f"pick one with --metric: {', '.join(sorted({s.metric for s in found}))}",
            )
        series = chosen[0]
        points = [ChartPoint(p.verdict, p.published, p.accepted) for p in series.points]
        settings = series.settings
        written = write_chart(
            chart,
            f"{name} · {series.name} · {series.metric}",
            points,
            subtitle=f"last {settings.window} published points, limits at {settings.sigma:g} sigma",
        )
        CONSOLE.print(f"Control chart of {series.name} {series.metric} written to {written}", highlight=False)
