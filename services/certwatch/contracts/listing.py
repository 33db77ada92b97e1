"""The domain lifecycle as every view that lists domains sees it: one pure step from a
lifecycle event to the change of the domain's row, shared by the inventory's domain list
and the classifier's details report (each adds columns of its own).

A listing row has the columns `domain_id`, `enabled`, `generation`, `status`, `port`,
`contact_ids`, `period_start` and `service_ends_on`. `DomainAdded` (each view inserts its
own columns) and verdicts (each view reads its own fields) are the views' own.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import NamedTuple

from certwatch.contracts import domain as dc
from certwatch.contracts.payload import Payload


class Retry(Enum):
    """Whether a row whose enable check failed (ENABLE_FAILED) is being checked again (ENABLING)."""

    NO = "no"
    ALWAYS = "always"
    IF_PORT_CHANGES = "if the port changes"  # the seed's "edit it and retry"


class RowChange(NamedTuple):
    domain_id: str
    values: Mapping[str, object]  # column -> new value
    retry: Retry = Retry.NO
    enabled_only: bool = False  # only while monitoring is enabled (a late event changes nothing)
    removed: bool = False  # the row goes


def domain_of(event: Payload) -> str:
    """The domain a domain lifecycle or status event is about."""
    domain_id = getattr(event, "domain_id", None)
    if not isinstance(domain_id, str):
        raise TypeError(f"a {event.TYPE} event names no domain")
    return domain_id


def row_change(event: Payload) -> RowChange | None:
    """What `event` does to the domain's listing row; None for events that do not touch it."""
    match event:
        case dc.DomainEdited() as e:
            contacts = {} if e.contact_ids is None else {"contact_ids": list(e.contact_ids)}
            return RowChange(e.domain_id, {"port": e.port, **contacts}, Retry.IF_PORT_CHANGES)
        case dc.MonitoringEnabled() as e:
            return RowChange(e.domain_id, {
                "enabled": True, "generation": e.generation, "status": "ENABLING",
                "period_start": e.period_start, "service_ends_on": e.service_ends_on,
            })  # fmt: skip
        case dc.RecheckRequested() as e:
            # Retrying after a failed enable check is an enable check again in a new generation;
            # a legacy ENABLE_FAILED domain (no generation change) is checked as one too.
            values = {"port": e.port, "generation": e.generation}
            return RowChange(e.domain_id, values, Retry.ALWAYS, enabled_only=True)
        case dc.MonitoringStarted() as e:
            return RowChange(
                e.domain_id, {"period_start": e.period_start, "service_ends_on": e.service_ends_on}
            )
        case dc.MonitoringDisabled() as e:
            return RowChange(e.domain_id, {"enabled": False, "status": "DISABLED"})
        case dc.MonitoringServiceEnded() as e:
            return RowChange(e.domain_id, {"enabled": False, "status": "SERVICE_ENDED"})
        case dc.DomainRemoved() as e:
            return RowChange(e.domain_id, {}, removed=True)
    return None


def changed_row(row: Mapping[str, object] | None, change: RowChange) -> dict[str, object] | None:
    """The listing row after `change`; None when there is no row (an event for a domain the
    view does not hold changes nothing) or the change removes it. Retries read the row as it
    was before the change (`port` is the port before an edit)."""
    if row is None or change.removed:
        return None
    if change.enabled_only and not row["enabled"]:
        return dict(row)
    status = row["status"]
    if status == "ENABLE_FAILED" and (
        change.retry is Retry.ALWAYS
        or (change.retry is Retry.IF_PORT_CHANGES and row["enabled"] and row["port"] != change.values["port"])
    ):
        status = "ENABLING"
    return {**row, "status": status, **change.values}
