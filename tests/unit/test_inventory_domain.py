"""Unit tests for the domain aggregate: enable checks, retries, rechecks and quota reservations."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.contracts.status import DomainClassified
from certwatch.inventory import domain as d
from certwatch.platform.errors import FailedPrecondition
from certwatch.platform.events import UPCASTERS, RecordedEvent
from certwatch.rules.causes import Status
from certwatch.rules.classify import Verdict
from certwatch.rules.quota import QuotaState, service_end

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


class Domain:
    """One domain and its account's quota, folded from the events the commands return."""

    def __init__(self, units: int = 1) -> None:
        self.events: list[d.Event] = [d.add(uuid.uuid4(), uuid.uuid4(), "www.example.com", 443, (), NOW)]
        self.quota_events: list[d.Event] = [(qc.QUOTA_PURCHASED, {"units": units})]

    @property
    def state(self) -> d.DomainState:
        state = d.fold(self.events)
        assert state is not None
        return state

    @property
    def quota(self) -> QuotaState:
        return d.quota_from(self.quota_events)

    def apply(self, events: list[d.Event]) -> list[str]:
        for event in events:
            (self.quota_events if event[0] in qc.QUOTA_EVENTS else self.events).append(event)
        return [t for t, _ in events]

    def enable(self, now: datetime = NOW) -> list[str]:
        return self.apply(d.enable(self.state, self.quota, now))

    def recheck(self, now: datetime = NOW) -> list[str]:
        return self.apply(d.recheck(self.state, self.quota, now))

    def verdict(self, status: str, at: datetime = NOW, generation: int | None = None) -> list[str]:
        gen = self.state.generation if generation is None else generation
        return self.apply(d.conclude_enable_check(self.state, generation=gen, status=status, checked_at=at))

    def last(self, event_type: str) -> dict[str, Any]:
        return next(x for t, x in reversed(self.events + self.quota_events) if t == event_type)


def test_enable_reserves_a_unit_and_a_successful_check_consumes_it_from_that_day() -> None:
    domain = Domain()
    assert domain.enable() == [qc.QUOTA_UNIT_RESERVED, dc.MONITORING_ENABLED]
    assert domain.quota == QuotaState(1, 0, 1)
    assert domain.last(dc.MONITORING_ENABLED)["period_start"] is None  # nothing runs yet
    assert domain.state.awaiting_check and domain.state.reserved

    checked = NOW + timedelta(days=2)  # the check ran late: the 365 days start then
    assert domain.verdict("SECURE", checked) == [dc.MONITORING_STARTED, qc.QUOTA_UNIT_CONSUMED]
    assert domain.quota == QuotaState(1, 1, 0)
    started = domain.last(dc.MONITORING_STARTED)
    assert (started["period_start"], started["service_ends_on"]) == (
        checked.date().isoformat(), service_end(checked.date()).isoformat())  # fmt: skip
    assert not domain.state.awaiting_check and domain.state.period_start == checked.date()
    assert domain.verdict("SECURE") == []  # later verdicts conclude nothing


@pytest.mark.parametrize(("first_check", "status", "starts"), [
    (True, "SECURE", True), (True, "ABNORMAL", True), (True, "ENABLE_FAILED", False), (False, "SECURE", False),
])  # fmt: skip
def test_views_show_the_period_the_verdict_starts(first_check: bool, status: str, starts: bool) -> None:
    checked = NOW + timedelta(days=1)
    domain = Domain()
    domain.enable()
    domain.verdict(status, checked)
    verdict = Verdict(host="www.example.com", port=443, checked_at=checked, status=Status(status))
    shown = DomainClassified(domain_id="d", account_id="a", generation=1, first_check=first_check,
                             verdict=verdict).period()  # fmt: skip
    if not starts:
        assert shown == (None, None)
        return
    started = domain.last(dc.MONITORING_STARTED)  # what the aggregate records just after
    assert shown == (
        date.fromisoformat(started["period_start"]),
        date.fromisoformat(started["service_ends_on"]),
    )


def test_an_abnormal_enable_check_still_starts_monitoring() -> None:
    domain = Domain()
    domain.enable()
    assert domain.verdict("ABNORMAL") == [dc.MONITORING_STARTED, qc.QUOTA_UNIT_CONSUMED]


def test_a_failed_enable_check_releases_the_unit_and_edit_retries_as_an_enable() -> None:
    domain = Domain()
    domain.enable()
    assert domain.verdict("ENABLE_FAILED") == [dc.ENABLE_CHECK_FAILED, qc.QUOTA_UNIT_RELEASED]
    assert domain.quota == QuotaState(1, 0, 0)
    assert domain.state.enabled and domain.state.enable_failed and domain.state.period_start is None

    # `domains edit` with the same port: nothing changed, still a retry.
    retry = d.edit_and_recheck(domain.state, port=443, contact_ids=None, quota_state=domain.quota, now=NOW)
    assert domain.apply(retry) == [qc.QUOTA_UNIT_RESERVED, dc.RECHECK_REQUESTED]
    requested = domain.last(dc.RECHECK_REQUESTED)
    assert requested["enable_check"] and requested["reserved_unit"] and requested["generation"] == 2
    assert domain.quota == QuotaState(1, 0, 1)
    assert domain.verdict("ENABLE_FAILED", generation=1) == []  # a late verdict of the failed try
    assert domain.verdict("SECURE") == [dc.MONITORING_STARTED, qc.QUOTA_UNIT_CONSUMED]
    assert domain.quota == QuotaState(1, 1, 0)


def test_edit_with_a_new_port_records_the_edit_then_retries() -> None:
    domain = Domain()
    domain.enable()
    domain.verdict("ENABLE_FAILED")
    events = d.edit_and_recheck(domain.state, port=8443, contact_ids=None, quota_state=domain.quota, now=NOW)
    assert domain.apply(events) == [dc.DOMAIN_EDITED, qc.QUOTA_UNIT_RESERVED, dc.RECHECK_REQUESTED]
    assert domain.last(dc.RECHECK_REQUESTED)["port"] == 8443


def test_a_retry_without_quota_is_refused_with_the_rule() -> None:
    domain = Domain(units=1)
    domain.enable()
    domain.verdict("ENABLE_FAILED")
    domain.quota_events.append((qc.QUOTA_UNIT_RESERVED, {}))  # another domain took the unit meanwhile
    with pytest.raises(FailedPrecondition, match="quota exhausted"):
        d.recheck(domain.state, domain.quota, NOW)


def test_enable_and_recheck_of_a_monitored_domain_probe_now_without_quota() -> None:
    domain = Domain()
    domain.enable()
    assert domain.recheck() == [dc.RECHECK_REQUESTED]  # still awaiting: still an enable check
    assert domain.last(dc.RECHECK_REQUESTED)["enable_check"]
    assert domain.state.reserved and domain.quota == QuotaState(1, 0, 1)  # the same unit
    # A verdict from before the request (the domain list may already show it) decides nothing.
    assert domain.verdict("ENABLE_FAILED", generation=1) == []
    domain.verdict("SECURE")
    exhausted = QuotaState(1, 1)
    for events in (d.enable(domain.state, exhausted, NOW), d.recheck(domain.state, None, NOW),
                   d.edit_and_recheck(domain.state, port=None, contact_ids=None, quota_state=None, now=NOW)):  # fmt: skip
        assert [t for t, _ in events] == [dc.RECHECK_REQUESTED]
        assert events[0][1]["enable_check"] is False and events[0][1]["generation"] == 2
    assert not d.wants_unit(domain.state, NOW.date())


def test_recheck_needs_monitoring_enabled_and_edit_of_a_disabled_domain_does_not_probe() -> None:
    domain = Domain()
    with pytest.raises(FailedPrecondition, match="not enabled"):
        d.recheck(domain.state, None, NOW)
    events = d.edit_and_recheck(domain.state, port=8443, contact_ids=None, quota_state=None, now=NOW)
    assert [t for t, _ in events] == [dc.DOMAIN_EDITED]
    assert d.edit_and_recheck(domain.state, port=None, contact_ids=None, quota_state=None, now=NOW) == []


@pytest.mark.parametrize("stop", ["disable", "remove"])
def test_stopping_during_the_enable_check_releases_the_unit(stop: str) -> None:
    domain = Domain()
    domain.enable()
    events = d.disable(domain.state, NOW) if stop == "disable" else d.remove(domain.state)
    assert domain.apply(events)[1:] == [qc.QUOTA_UNIT_RELEASED]
    assert domain.quota == QuotaState(1, 0, 0)
    assert domain.verdict("SECURE", generation=1) == []  # its check came back too late


def test_a_re_enable_within_the_period_needs_no_unit_and_a_failure_returns_nothing() -> None:
    domain = Domain()
    domain.enable()
    domain.verdict("SECURE")
    domain.apply(d.disable(domain.state, NOW))
    assert domain.quota == QuotaState(1, 1, 0)  # disabling returns no consumed unit
    later = NOW + timedelta(days=100)
    assert d.enable(domain.state, None, later)[0][0] == dc.MONITORING_ENABLED  # no quota needed
    domain.enable(later)
    assert domain.last(dc.MONITORING_ENABLED)["period_start"] == NOW.date().isoformat()
    assert domain.verdict("ENABLE_FAILED", later) == [dc.ENABLE_CHECK_FAILED]
    assert domain.recheck(later) == [dc.RECHECK_REQUESTED]  # retry: still within the period
    assert domain.verdict("SECURE", later) == [dc.MONITORING_STARTED]
    assert domain.state.period_start == NOW.date()  # the clock did not restart
    assert domain.quota == QuotaState(1, 1, 0)


def test_after_the_period_an_enable_reserves_again_and_the_period_renews() -> None:
    domain = Domain(units=2)
    domain.enable()
    domain.verdict("SECURE")
    after = NOW + timedelta(days=365)
    assert [t for t, _ in d.end_service(domain.state, after.date())] == [dc.SERVICE_ENDED]
    domain.apply(d.end_service(domain.state, after.date()))
    assert domain.enable(after) == [qc.QUOTA_UNIT_RESERVED, dc.MONITORING_ENABLED]
    assert d.end_service(domain.state, after.date()) == []  # awaiting its check: nothing to end
    domain.verdict("SECURE", after)
    assert domain.state.period_start == after.date() and domain.quota == QuotaState(2, 2, 0)


def _recorded(event_type: str, data: dict[str, Any]) -> RecordedEvent:
    return RecordedEvent(1, uuid.uuid4(), "s", 1, event_type, 1, data, {}, NOW, 1)


def test_events_written_before_reservations_keep_their_meaning() -> None:
    """A version 1 enable consumed its unit at once and counted as started."""
    domain = Domain()
    state = domain.state
    v1 = {"domain_id": state.domain_id, "account_id": state.account_id, "host": state.host, "port": 443,
          "period_start": "2025-06-01", "service_ends_on": "2026-05-31", "generation": 1,
          "enabled_at": "2025-06-01T00:00:00+00:00"}  # fmt: skip
    enabled = UPCASTERS.upcast(_recorded(dc.MONITORING_ENABLED, v1))
    consumed = UPCASTERS.upcast(_recorded(qc.QUOTA_UNIT_CONSUMED, {"period_start": "2025-06-01"}))
    assert (enabled.schema_version, consumed.schema_version) == (2, 2)
    domain.events.append((enabled.type, enabled.data))
    domain.quota_events.append((consumed.type, consumed.data))
    assert domain.quota == QuotaState(1, 1, 0)
    assert domain.state.period_start == date(2025, 6, 1) and not domain.state.awaiting_check
    assert domain.verdict("ENABLE_FAILED") == []  # no enable check of the new kind to conclude
    assert domain.recheck() == [dc.RECHECK_REQUESTED]
    assert d.schema_version(dc.MONITORING_ENABLED) == 2 and d.schema_version(dc.DOMAIN_ADDED) == 1


_STEPS = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(
    ["enable", "recheck", "edit", "disable", "remove", "SECURE", "ENABLE_FAILED", "stale"])), max_size=40)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 3), _STEPS)
def test_the_quota_always_matches_the_domains(units: int, steps: list[tuple[int, str]]) -> None:
    """Whatever the order of commands and verdicts: reserved units are exactly the domains
    awaiting a check with a unit, consumed ones exactly the periods started, nothing oversold."""
    account = uuid.uuid4()
    streams = [[d.add(uuid.uuid4(), account, f"d{i}.example.com", 443, (), NOW)] for i in range(3)]
    quota_events: list[d.Event] = [(qc.QUOTA_PURCHASED, {"units": units})] if units else []
    for index, step in steps:
        state = d.fold(streams[index])
        assert state is not None
        quota_state = d.quota_from(quota_events)
        try:
            if step in ("SECURE", "ENABLE_FAILED", "stale"):
                generation = state.generation - 1 if step == "stale" else state.generation
                events = d.conclude_enable_check(state, generation=generation, status=step, checked_at=NOW)
            elif step == "edit":
                events = d.edit_and_recheck(
                    state, port=443, contact_ids=None, quota_state=quota_state, now=NOW
                )
            elif step in ("enable", "recheck"):
                events = getattr(d, step)(state, quota_state, NOW)
            else:
                events = getattr(d, step)(state, NOW) if step == "disable" else d.remove(state)
        except FailedPrecondition:
            continue
        for event in events:
            (quota_events if event[0] in qc.QUOTA_EVENTS else streams[index]).append(event)
        quota_state = d.quota_from(quota_events)
        states = [d.fold(s) for s in streams]
        assert quota_state.reserved_units == sum(1 for s in states if s and s.reserved)
        assert quota_state.consumed_units == sum(
            1 for s in streams for t, x in s if t == dc.MONITORING_STARTED and x["consumed_unit"]
        )
        assert quota_state.available_units >= 0
