"""Bootstrap of the classifier service."""

from __future__ import annotations

from certwatch.classifier import api, details, processor, status_intervals
from certwatch.classifier.reports import api as reports_api
from certwatch.platform.service import Parts, Runtime


async def build(rt: Runtime) -> Parts:
    return Parts(
        registrations=[
            api.registration(api.ClassifierApi(rt.event_log)),
            reports_api.registration(reports_api.ReportsApi(rt.event_log)),
        ],
        projections=[
            processor.processor(rt.event_log),
            processor.STATUS_VIEW,
            details.DETAILS_VIEW,
            status_intervals.STATUS_INTERVALS,
        ],
    )
