"""The monitored-domain aggregate: state, a pure `evolve`, and commands that return events.

No I/O here. The gRPC layer loads a domain's stream, folds it with `evolve`, asks a command
for the events to append, and appends them with the stream version as expected version.
Events on the account's quota stream (`QUOTA_EVENTS`) go to that stream instead.

An enable (or the retry of a failed one) reserves a quota unit when no period is running;
the enable check's verdict concludes it (`conclude_enable_check`): monitoring starts and the
unit is consumed, or, on `ENABLE_FAILED`, the unit is released. Until a retry the domain
stays enabled but unmonitored, as the seed's "edit it and retry" expects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from certwatch.contracts.domain import (
    DOMAIN_ADDED,
    DOMAIN_EDITED,
    DOMAIN_REMOVED,
    ENABLE_CHECK_FAILED,
    MONITORING_DISABLED,
    MONITORING_ENABLED,
    MONITORING_STARTED,
    RECHECK_REQUESTED,
    SERVICE_ENDED,
)
from certwatch.contracts.payload import payload_type
from certwatch.contracts.quota import (
    QUOTA_PURCHASED,
    QUOTA_UNIT_CONSUMED,
    QUOTA_UNIT_RELEASED,
    QUOTA_UNIT_RESERVED,
)
from certwatch.platform.errors import FailedPrecondition
from certwatch.rules import quota
from certwatch.rules.causes import Status

Event = tuple[str, dict[str, Any]]


def schema_version(event_type: str) -> int:
    return payload_type(event_type).VERSION


@dataclass(frozen=True, slots=True)
class DomainState:
    domain_id: str
    account_id: str
    host: str
    port: int
    contact_ids: tuple[str, ...] = ()
    enabled: bool = False
    period_start: date | None = None  # first day of the current 365-day service period
    generation: int = 0  # counts enable attempts; a verdict names the generation it belongs to
    removed: bool = False
    version: int = 0
    awaiting_check: bool = False  # the enable check of `generation` has no verdict yet
    reserved: bool = False  # a quota unit is held for that check
    enable_failed: bool = False  # the last enable check failed: enabled, but not monitored


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


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
            state, enabled=True, period_start=_day(data["period_start"]), generation=int(data["generation"]),
            awaiting_check=bool(data["awaiting_check"]), reserved=bool(data["reserved_unit"]),
            enable_failed=False,
        )  # fmt: skip
    if event_type == RECHECK_REQUESTED:
        state = replace(state, generation=int(data["generation"]), port=int(data["port"]))
        if not data["enable_check"]:
            return state
        return replace(state, awaiting_check=True, enable_failed=False,
                       reserved=state.reserved or bool(data["reserved_unit"]))  # fmt: skip
    if event_type == MONITORING_STARTED:
        return replace(state, period_start=_day(data["period_start"]), awaiting_check=False, reserved=False)
    if event_type == ENABLE_CHECK_FAILED:
        return replace(state, awaiting_check=False, reserved=False, enable_failed=True)
    if event_type in (MONITORING_DISABLED, SERVICE_ENDED):
        return replace(state, enabled=False, awaiting_check=False, reserved=False, enable_failed=False)
    if event_type == DOMAIN_REMOVED:
        return replace(state, removed=True, enabled=False, awaiting_check=False, reserved=False)
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


def wants_unit(state: DomainState, today: date) -> bool:
    """Whether enabling or retrying this domain today would reserve a unit, so that callers
    load (and lock) the account's quota only then."""
    starting = not state.enabled or state.enable_failed
    return starting and not state.removed and quota.needs_unit(state.period_start, today)


def _reserve(
    state: DomainState, quota_state: quota.QuotaState | None, generation: int, today: date
) -> list[Event]:
    if not quota.needs_unit(state.period_start, today):
        return []
    if quota_state is None:
        raise ValueError("this enable needs the quota: ask wants_unit() before")
    try:
        quota_state.reserve()
    except quota.QuotaExhausted as exc:
        raise FailedPrecondition(f"cannot enable {state.host}:{state.port}: {exc}") from exc
    return [(QUOTA_UNIT_RESERVED, {**_base(state), "generation": generation})]


def enable(state: DomainState, quota_state: quota.QuotaState | None, now: datetime) -> list[Event]:
    """Enable monitoring: reserve a unit unless a period is running, and check at once.

    Enabling an enabled domain re-checks it (see :func:`recheck`).
    """
    _live(state)
    if state.enabled:
        return recheck(state, quota_state, now)
    generation = state.generation + 1
    reserved = _reserve(state, quota_state, generation, now.date())
    period = None if reserved else state.period_start
    return [*reserved, (
        MONITORING_ENABLED,
        {
            **_base(state), "host": state.host, "port": state.port,
            "period_start": period.isoformat() if period else None,
            "service_ends_on": quota.service_end(period).isoformat() if period else None,
            "generation": generation, "enabled_at": now.isoformat(),
            "reserved_unit": bool(reserved), "awaiting_check": True,
        },
    )]  # fmt: skip


def recheck(state: DomainState, quota_state: quota.QuotaState | None, now: datetime) -> list[Event]:
    """Probe now. While an enable check is pending, or after it failed (the retry), this is
    an enable check again, in a new generation so that a verdict from before the request
    concludes nothing; a retry reserves a unit again unless a period is running."""
    _live(state)
    if not state.enabled:
        raise FailedPrecondition(
            f"monitoring of {state.host}:{state.port} is not enabled; enable it to check it"
        )
    enable_check = state.enable_failed or state.awaiting_check
    generation = state.generation + 1 if enable_check else state.generation
    reserved = _reserve(state, quota_state, generation, now.date()) if state.enable_failed else []
    return [*reserved, (RECHECK_REQUESTED, {
        **_base(state), "host": state.host, "port": state.port, "generation": generation,
        "enable_check": enable_check, "reserved_unit": bool(reserved), "requested_at": now.isoformat(),
    })]  # fmt: skip


def _released(state: DomainState) -> list[Event]:
    return [(QUOTA_UNIT_RELEASED, {**_base(state), "generation": state.generation})] if state.reserved else []


def disable(state: DomainState, now: datetime) -> list[Event]:
    """Stop monitoring; a unit still reserved by a pending enable check goes back."""
    _live(state)
    if not state.enabled:
        return []
    disabled = {**_base(state), "disabled_at": now.isoformat(), "released_unit": state.reserved}
    return [(MONITORING_DISABLED, disabled), *_released(state)]


def conclude_enable_check(
    state: DomainState | None, *, generation: int, status: str, checked_at: datetime
) -> list[Event]:
    """The enable check's verdict: monitoring starts (the reserved unit is consumed and the
    365 days run from the check's day), or it could not be enabled (the unit is released).

    Verdicts of other generations, of domains not awaiting a check, and repeats are no-ops.
    """
    if state is None or not state.enabled or not state.awaiting_check or generation != state.generation:
        return []
    base = {**_base(state), "generation": generation}
    if status == Status.ENABLE_FAILED:
        failed = {**base, "released_unit": state.reserved, "failed_at": checked_at.isoformat()}
        return [(ENABLE_CHECK_FAILED, failed), *_released(state)]
    # a new period starts on the check's day (as `period_from_verdict` shows it at once)
    start = checked_at.date() if state.reserved or state.period_start is None else state.period_start
    started = {
        **base,
        "period_start": start.isoformat(),
        "service_ends_on": quota.service_end(start).isoformat(),
    }
    events: list[Event] = [(MONITORING_STARTED, {**started, "consumed_unit": state.reserved,
                                                 "started_at": checked_at.isoformat()})]  # fmt: skip
    if state.reserved:
        events.append((QUOTA_UNIT_CONSUMED, {**started, "reserved": True}))
    return events


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


def edit_and_recheck(
    state: DomainState, *, port: int | None, contact_ids: tuple[str, ...] | None,
    quota_state: quota.QuotaState | None, now: datetime,
) -> list[Event]:  # fmt: skip
    """A user's edit: an enabled domain is re-checked, changed or not (after a failed enable
    check this is the seed's "edit it and retry")."""
    events = edit(state, port=port, contact_ids=contact_ids)
    for event_type, data in events:
        state = evolve(state, event_type, data)
    return events + recheck(state, quota_state, now) if state.enabled else events


def remove(state: DomainState) -> list[Event]:
    if state.removed:
        return []
    return [(DOMAIN_REMOVED, {**_base(state), "host": state.host, "port": state.port}), *_released(state)]


def quota_evolve(state: quota.QuotaState, event_type: str, data: dict[str, Any]) -> quota.QuotaState:
    if event_type == QUOTA_PURCHASED:
        return state.purchase(int(data["units"]))
    if event_type == QUOTA_UNIT_RESERVED:
        return state.reserve()
    if event_type == QUOTA_UNIT_RELEASED:
        return state.release()
    if event_type == QUOTA_UNIT_CONSUMED:
        return state.consume_reserved() if data["reserved"] else state.consume()
    return state


def quota_from(events: list[tuple[str, dict[str, Any]]]) -> quota.QuotaState:
    state = quota.QuotaState()
    for event_type, data in events:
        state = quota_evolve(state, event_type, data)
    return state
