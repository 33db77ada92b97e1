"""Bootstrap of the classifier service."""

from __future__ import annotations

from certwatch.classifier import api, details, removals, status_intervals, status_view
from certwatch.classifier.reports import api as reports_api
from certwatch.classifier.verdicts import VerdictWriter
from certwatch.platform import observation_stream
from certwatch.platform.observations import ObservationMaintainer
from certwatch.platform.service import Parts, Runtime

DURABLE = "classifier"  # the observation stream's consumer: every replica shares it


async def build(rt: Runtime) -> Parts:
    assert rt.bus is not None, "the classifier consumes observations: it needs JetStream"
    await observation_stream.ensure_stream(rt.bus.js, replicas=rt.settings.stream_replicas)
    consumer = observation_stream.ObservationConsumer(rt.bus.nc, DURABLE, VerdictWriter(rt.event_log))
    return Parts(
        registrations=[
            api.registration(api.ClassifierApi(rt.event_log)),
            reports_api.registration(reports_api.ReportsApi(rt.event_log)),
        ],
        projections=[
            removals.REMOVALS,
            status_view.STATUS_VIEW,
            details.DETAILS_VIEW,
            status_intervals.STATUS_INTERVALS,
        ],
        workers=[
            consumer,
            ObservationMaintainer(rt.pool, retention_days=rt.settings.observation_retention_days),
        ],
    )
