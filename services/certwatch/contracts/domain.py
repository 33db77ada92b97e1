"""The monitored-domain lifecycle, appended by the inventory on `domain-<domain id>` streams.

Read by the prober (its schedule), the classifier (the details report) and the inventory's
own views. Version 2 of `MonitoringEnabled` came with quota reservations; version 1 payloads
are upcast as they are read.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from certwatch.contracts.payload import Category, Payload
from certwatch.platform.events import UPCASTERS, JsonDict

STREAM = Category("domain")
stream_id = STREAM.stream_id

DOMAIN_ADDED = "DomainAdded"
DOMAIN_EDITED = "DomainEdited"
MONITORING_ENABLED = "MonitoringEnabled"
MONITORING_DISABLED = "MonitoringDisabled"
DOMAIN_REMOVED = "DomainRemoved"
SERVICE_ENDED = "MonitoringServiceEnded"
RECHECK_REQUESTED = "RecheckRequested"
MONITORING_STARTED = "MonitoringStarted"
ENABLE_CHECK_FAILED = "MonitoringEnableFailed"
DOMAIN_EVENTS = (
    DOMAIN_ADDED, DOMAIN_EDITED, MONITORING_ENABLED, MONITORING_DISABLED, DOMAIN_REMOVED, SERVICE_ENDED,
    RECHECK_REQUESTED, MONITORING_STARTED, ENABLE_CHECK_FAILED,
)  # fmt: skip


class DomainEvent(Payload, frozen=True, kw_only=True):
    domain_id: str
    account_id: str


class DomainAdded(DomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = DOMAIN_ADDED
    host: str
    port: int
    contact_ids: tuple[str, ...] = ()
    added_at: datetime


class DomainEdited(DomainEvent, frozen=True, kw_only=True):
    """`port` is the domain's port after the edit; `contact_ids` only when they changed."""

    TYPE: ClassVar[str] = DOMAIN_EDITED
    host: str | None = None
    port: int
    contact_ids: tuple[str, ...] | None = None


class MonitoringEnabled(DomainEvent, frozen=True, kw_only=True):
    """`period_start` is None while the enable check that starts a period is pending."""

    TYPE: ClassVar[str] = MONITORING_ENABLED
    VERSION: ClassVar[int] = 2
    host: str
    port: int
    period_start: date | None
    service_ends_on: date | None
    generation: int
    enabled_at: datetime
    reserved_unit: bool
    awaiting_check: bool


class MonitoringDisabled(DomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = MONITORING_DISABLED
    disabled_at: datetime | None = None
    released_unit: bool = False


class DomainRemoved(DomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = DOMAIN_REMOVED
    host: str | None = None
    port: int | None = None


class MonitoringServiceEnded(DomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = SERVICE_ENDED
    ended_on: date
    period_start: date


class RecheckRequested(DomainEvent, frozen=True, kw_only=True):
    """A probe now; `enable_check`: it concludes the enable check of `generation`."""

    TYPE: ClassVar[str] = RECHECK_REQUESTED
    host: str
    port: int
    generation: int
    enable_check: bool = False
    reserved_unit: bool = False
    requested_at: datetime | None = None


class MonitoringStarted(DomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = MONITORING_STARTED
    generation: int
    period_start: date
    service_ends_on: date
    consumed_unit: bool
    started_at: datetime


class MonitoringEnableFailed(DomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = ENABLE_CHECK_FAILED
    generation: int
    released_unit: bool
    failed_at: datetime


@UPCASTERS.register(MONITORING_ENABLED, 1)
def _enabled_v1(data: JsonDict) -> JsonDict:
    """Before reservations an enable consumed its unit and counted as started at once."""
    return {**data, "reserved_unit": False, "awaiting_check": False}
