"""The alert a run sends when statistical process control flagged what it wrote: one JSON
POST to the configured webhook (alerts.webhook), bounded, never failing the run."""

from __future__ import annotations

from releasekit.alerts.payload import payload
from releasekit.alerts.webhook import Delivery, send
from releasekit.engine.quality import Assessment
from releasekit.engine.runtime import RunContext


def send_alert(
    run: RunContext, kind: str, release_id: int | None, quality: Assessment, published: bool, project: str
) -> Delivery | None:
    """Alert on `quality`'s findings the user did not accept; None when there are none or
    no webhook is configured. A webhook that fails is reported in the Delivery, never raised."""
    if run.alert_webhook is None or not any(not f.accepted for f in quality.findings):
        return None
    event = quality.alert(run.name, kind, not published, release_id, run.git_sha, run.now(), project)
    return send(run.alert_webhook, payload(event))
