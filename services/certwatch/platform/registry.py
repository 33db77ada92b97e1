"""Every service's bootstrap and every projection, by name: for `serve` and `rebuild`."""

from __future__ import annotations

import importlib

from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import Projection
from certwatch.platform.service import Build

SERVICES: dict[str, str] = {
    "inventory": "certwatch.inventory.app",
    "prober": "certwatch.prober.app",
    "classifier": "certwatch.classifier.app",
    "notifier": "certwatch.notifier.app",
    "hosting": "certwatch.hosting.app",
    "vod": "certwatch.vod.app",
}


def build_for(service: str) -> Build:
    module = importlib.import_module(SERVICES[service])
    build: Build = module.build
    return build


def projections(event_log: EventLog) -> dict[str, Projection]:
    from certwatch.classifier.details import DETAILS_VIEW
    from certwatch.classifier.processor import STATUS_VIEW, processor
    from certwatch.classifier.status_intervals import STATUS_INTERVALS
    from certwatch.hosting.observed_expiry import OBSERVED_EXPIRY
    from certwatch.inventory import enable_checks
    from certwatch.inventory.contact_views import CONTACT_VIEW
    from certwatch.inventory.views import DOMAIN_VIEW
    from certwatch.notifier.alert_state import ALERT_STATE
    from certwatch.prober.schedule import SCHEDULE
    from certwatch.vod.cert_facts import CERT_FACTS

    found = [DOMAIN_VIEW, CONTACT_VIEW, enable_checks.processor(event_log), SCHEDULE, processor(event_log),
             STATUS_VIEW, DETAILS_VIEW, STATUS_INTERVALS, ALERT_STATE, OBSERVED_EXPIRY, CERT_FACTS]  # fmt: skip
    return {p.name: p for p in found}
