"""The catalogue: every service, its default gRPC port, its projections and its migrations.

The one module that names them all. The platform runs whatever it is handed (`serve`,
`rebuild`, migrations at start) and names no service; the CLI and the test stacks pass
this catalogue in. A new service is added here (and in the chart, see
tests/unit/test_packaging.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # every CLI command reads the ports here: no database or NATS client for that
    from certwatch.platform.eventlog import EventLog
    from certwatch.platform.projection import Projection
    from certwatch.platform.service import Build

# name -> its bootstrap module (imported only by the process that serves it) and gRPC port
SERVICES: dict[str, str] = {
    "inventory": "certwatch.inventory.app",
    "prober": "certwatch.prober.app",
    "classifier": "certwatch.classifier.app",
    "notifier": "certwatch.notifier.app",
    "hosting": "certwatch.hosting.app",
    "vod": "certwatch.vod.app",
    "console": "certwatch.console.app",
}
PORTS: dict[str, int] = {
    "inventory": 50051,
    "prober": 50052,
    "classifier": 50053,
    "notifier": 50054,
    "hosting": 50055,
    "vod": 50056,
    "console": 8000,  # HTTP: the web console (CERTWATCH_CONSOLE_PORT), not gRPC
}
# Services whose port is an HTTP edge rather than gRPC (no Ops or gRPC health there).
HTTP_SERVICES: frozenset[str] = frozenset({"console"})

# Packages whose `migrations/` folders hold the schema, in the order they apply: later
# components reference the platform's tables. Also the `component` recorded in
# `schema_migrations`, so a name here never changes.
MIGRATIONS: tuple[str, ...] = (
    "certwatch.platform",
    "certwatch.inventory",
    "certwatch.prober",
    "certwatch.classifier",
    "certwatch.notifier",
    "certwatch.hosting",
    "certwatch.vod",
    "certwatch.console",
)


def build_for(service: str) -> Build:
    module = importlib.import_module(SERVICES[service])
    build: Build = module.build
    return build


def projections(event_log: EventLog) -> dict[str, Projection]:
    """Every projection by name, for `certwatch admin rebuild`."""
    from certwatch.classifier.details import DETAILS_VIEW
    from certwatch.classifier.removals import REMOVALS
    from certwatch.classifier.status_intervals import STATUS_INTERVALS
    from certwatch.classifier.status_view import STATUS_VIEW
    from certwatch.hosting import views as hosting_views
    from certwatch.hosting.observed_expiry import OBSERVED_EXPIRY
    from certwatch.inventory import enable_checks
    from certwatch.inventory.contact_views import CONTACT_VIEW
    from certwatch.inventory.views import DOMAIN_VIEW
    from certwatch.notifier import incidents
    from certwatch.platform.config import Settings
    from certwatch.prober.schedule import SCHEDULE
    from certwatch.vod.domain_views import DOMAIN_VIEWS
    from certwatch.vod.hosting_views import HOSTING_VIEWS
    from certwatch.vod.observed_hosts import OBSERVED_HOSTS

    found = [DOMAIN_VIEW, CONTACT_VIEW, enable_checks.processor(event_log), SCHEDULE, REMOVALS,
             STATUS_VIEW, DETAILS_VIEW, STATUS_INTERVALS, OBSERVED_EXPIRY, OBSERVED_HOSTS,
             DOMAIN_VIEWS, HOSTING_VIEWS, hosting_views.projection(event_log),
             # A rebuild opens no contact (no vault): it restores memory; alerts were queued before.
             incidents.projection(event_log, Settings(), None)]  # fmt: skip
    return {p.name: p for p in found}
