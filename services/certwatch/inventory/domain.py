"""The monitored-domain aggregate: state, a pure `evolve`, and commands that return events.

No I/O here. The gRPC layer loads a domain's stream, folds it with `evolve`, asks a command
for the events to append, and appends them with the stream version as expected version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from certwatch.inventory import quota
from certwatch.platform.errors import FailedPrecondition

DOMAIN_ADDED = "DomainAdded"
DOMAIN_EDITED = "DomainEdited"
MONITORING_ENABLED = "MonitoringEnabled"
MONITORING_DISABLED = "MonitoringDisabled"
DOMAIN_REMOVED = "DomainRemoved"
SERVICE_ENDED = "MonitoringServiceEnded"
DOMAIN_EVENTS = (
    DOMAIN_ADDED, DOMAIN_EDITED, MONITORING_ENABLED, MONITORING_DISABLED, DOMAIN_REMOVED, SERVICE_ENDED,
)  # fmt: skip

QUOTA_PURCHASED = "QuotaPackagePurchased"
QUOTA_UNIT_CONSUMED = "QuotaUnitConsumed"

Event = tuple[str, dict[str, Any]]


def stream_id(domain_id: uuid.UUID | str) -> str:
    return f"domain-{domain_id}"


def quota_stream_id(account_id: uuid.UUID | str) -> str:
    return f"quota-{account_id}"


@dataclass(frozen=True, slots=True)
class DomainState:
    domain_id: str
    account_id: str
    host: str
    port: int
    contact_ids: tuple[str, ...] = ()
    enabled: bool = False
    period_start: date | None = None  # first day of the current 365-day service period
    generation: int = 0  # counts enables; a verdict names the generation it belongs to
    removed: bool = False
    version: int = 0


def evolve(state: DomainState | None, event_type: str, data: dict[str, Any]) -> DomainState:
    """Apply one recorded event to the state. Unknown types are ignored (forward compatible)."""
    if event_type == DOMAIN_ADDED:
        return DomainState(
            domain_id=data["domain_id"], account_id=data["account_id"], host=data["host"],
            port=int(data["port"]), contact_ids=tuple(data.get("contact_ids", ())), version=1,
        )  # fmt: skip
    if state is None:
        raise ValueError(f"{event_type} before {DOMAIN_ADDED}")
    state = replace(state, version=state.version + 1)
    if event_type == DOMAIN_EDITED:
        return replace(
            state,
            port=int(data.get("port", state.port)),
            contact_ids=tuple(data.get("contact_ids", state.contact_ids)),
        )
    if event_type == MONITORING_ENABLED:
        return replace(
            state, enabled=True, period_start=date.fromisoformat(data["period_start"]),
            generation=int(data["generation"]),
        )  # fmt: skip
    if event_type in (MONITORING_DISABLED, SERVICE_ENDED):
        return replace(state, enabled=False)
    if event_type == DOMAIN_REMOVED:
        return replace(state, removed=True, enabled=False)
    return state


def fold(events: list[tuple[str, dict[str, Any]]]) -> DomainState | None:
    state: DomainState | None = None
    for event_type, data in events:
        state = evolve(state, event_type, data)
    return state


def add(
    domain_id: uuid.UUID, account_id: uuid.UUID, host: str, port: int,
    contact_ids: tuple[str, ...], now: datetime,
) -> Event:  # fmt: skip
    return DOMAIN_ADDED, {
        "domain_id": str(domain_id), "account_id": str(account_id), "host": host, "port": port,
        "contact_ids": list(contact_ids), "added_at": now.isoformat(),
    }  # fmt: skip


def _base(state: DomainState) -> dict[str, Any]:
    return {"domain_id": state.domain_id, "account_id": state.account_id}


def _live(state: DomainState) -> None:
    if state.removed:
        raise FailedPrecondition(f"domain {state.domain_id} was removed")


def enable(state: DomainState, quota_state: quota.QuotaState, now: datetime) -> list[Event]:
    """Enable monitoring; consumes a quota unit only when a new 365-day period starts.

    Enabling an enabled domain is a no-op (no events), so retries are harmless.
    """
    _live(state)
    if state.enabled:
        return []
    try:
        outcome = quota.enable(quota_state, state.period_start, now.date())
    except quota.QuotaExhausted as exc:
        raise FailedPrecondition(f"cannot enable {state.host}:{state.port}: {exc}") from exc
    events: list[Event] = []
    if outcome.consumed_unit:
        events.append(
            (QUOTA_UNIT_CONSUMED, {**_base(state), "period_start": outcome.period_start.isoformat()})
        )
    events.append((
        MONITORING_ENABLED,
        {
            **_base(state), "host": state.host, "port": state.port,
            "period_start": outcome.period_start.isoformat(),
            "service_ends_on": quota.service_end(outcome.period_start).isoformat(),
            "generation": state.generation + 1, "enabled_at": now.isoformat(),
        },
    ))  # fmt: skip
    return events


def disable(state: DomainState, now: datetime) -> list[Event]:
    _live(state)
    if not state.enabled:
        return []
    return [(MONITORING_DISABLED, {**_base(state), "disabled_at": now.isoformat()})]


def end_service(state: DomainState, today: date) -> list[Event]:
    """Stop monitoring when the 365-day period is over (the clock ran while disabled too)."""
    if state.removed or state.period_start is None or not quota.is_expired(state.period_start, today):
        return []
    if not state.enabled:
        return []
    return [(SERVICE_ENDED, {**_base(state), "ended_on": today.isoformat(),
                             "period_start": state.period_start.isoformat()})]  # fmt: skip


def edit(state: DomainState, *, port: int | None, contact_ids: tuple[str, ...] | None) -> list[Event]:
    _live(state)
    data: dict[str, Any] = _base(state)
    if port is not None and port != state.port:
        data["port"] = port
    if contact_ids is not None and contact_ids != state.contact_ids:
        data["contact_ids"] = list(contact_ids)
    if len(data) == 2:
        return []
    data["host"] = state.host
    data["port"] = data.get("port", state.port)
    return [(DOMAIN_EDITED, data)]


def remove(state: DomainState) -> list[Event]:
    if state.removed:
        return []
    return [(DOMAIN_REMOVED, {**_base(state), "host": state.host, "port": state.port})]


def quota_from(events: list[tuple[str, dict[str, Any]]]) -> quota.QuotaState:
    state = quota.QuotaState()
    for event_type, data in events:
        if event_type == QUOTA_PURCHASED:
            state = state.purchase(int(data["units"]))
        elif event_type == QUOTA_UNIT_CONSUMED:
            state = state.consume()
    return state
