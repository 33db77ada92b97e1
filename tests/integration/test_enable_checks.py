"""The inventory learns each enable check's outcome from the classifier's verdicts, exactly
once, through the real event log; events written before reservations keep their meaning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from certwatch.classifier import events as cev
from certwatch.inventory import domain as d
from certwatch.inventory import enable_checks
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up, rebuild

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


async def _types(event_log: EventLog, stream: str) -> list[str]:
    return [e.type for e in await event_log.read_stream(stream)]


async def _quota(event_log: EventLog, account: uuid.UUID) -> tuple[int, int, int]:
    q = d.quota_from([(e.type, e.data) for e in await event_log.read_stream(d.quota_stream_id(account))])
    return q.purchased_units, q.consumed_units, q.reserved_units


async def _enabled_domain(event_log: EventLog) -> tuple[uuid.UUID, uuid.UUID]:
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "check.example.com", 443, (), NOW)
    quota = d.quota_from([(d.QUOTA_PURCHASED, {"units": 1})])
    events = [added, *d.enable(d.evolve(None, *added), quota, NOW)]
    await event_log.append_batch([
        (d.stream_id(domain_id), [NewEvent(t, x, schema_version=d.schema_version(t))
                                  for t, x in events if t not in d.QUOTA_EVENTS], 0),
        (d.quota_stream_id(account), [NewEvent(d.QUOTA_PURCHASED, {"units": 1}),
                                      *(NewEvent(t, x) for t, x in events if t in d.QUOTA_EVENTS)], None),
    ])  # fmt: skip
    return account, domain_id


async def _verdict(event_log: EventLog, account: uuid.UUID, domain_id: uuid.UUID, status: str) -> None:
    data = {"domain_id": str(domain_id), "account_id": str(account), "generation": 1, "first_check": True,
            "verdict": {"status": status, "checked_at": NOW.isoformat()}}  # fmt: skip
    await event_log.append(cev.stream_id(str(domain_id)), [NewEvent(cev.DOMAIN_CLASSIFIED, data)],
                           expected_version=None)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "concluded", "quota"),
    [("SECURE", d.MONITORING_STARTED, (1, 1, 0)), ("ENABLE_FAILED", d.ENABLE_CHECK_FAILED, (1, 0, 0))],
)
async def test_the_enable_checks_verdict_concludes_it_once(
    event_log: EventLog, status: str, concluded: str, quota: tuple[int, int, int]
) -> None:
    processor = enable_checks.processor(event_log)
    account, domain_id = await _enabled_domain(event_log)
    assert await _quota(event_log, account) == (1, 0, 1)
    await _verdict(event_log, account, domain_id, status)
    await _verdict(event_log, account, domain_id, status)  # a repeat concludes nothing more
    await catch_up(event_log, processor)
    expected = [d.DOMAIN_ADDED, d.MONITORING_ENABLED, concluded]
    assert await _types(event_log, d.stream_id(domain_id)) == expected
    assert await _quota(event_log, account) == quota
    await rebuild(event_log, processor)  # a replay appends nothing twice
    assert await _types(event_log, d.stream_id(domain_id)) == expected
    assert await _quota(event_log, account) == quota


async def test_events_from_before_reservations_read_as_started(event_log: EventLog) -> None:
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "old.example.com", 443, (), NOW)
    v1 = {"domain_id": str(domain_id), "account_id": str(account), "host": "old.example.com", "port": 443,
          "period_start": "2025-06-01", "service_ends_on": "2026-05-31", "generation": 1,
          "enabled_at": "2025-06-01T00:00:00+00:00"}  # fmt: skip
    await event_log.append_batch([
        (d.stream_id(domain_id), [NewEvent(*added), NewEvent(d.MONITORING_ENABLED, v1)], 0),
        (d.quota_stream_id(account), [NewEvent(d.QUOTA_PURCHASED, {"units": 2}),
                                      NewEvent(d.QUOTA_UNIT_CONSUMED, {"period_start": "2025-06-01"})], 0),
    ])  # fmt: skip
    await _verdict(event_log, account, domain_id, "ENABLE_FAILED")
    await catch_up(event_log, enable_checks.processor(event_log))
    # It consumed its unit at enable under the old rule; no enable check of the new kind to conclude.
    assert await _types(event_log, d.stream_id(domain_id)) == [d.DOMAIN_ADDED, d.MONITORING_ENABLED]
    assert await _quota(event_log, account) == (2, 1, 0)
    state = d.fold([(e.type, e.data) for e in await event_log.read_stream(d.stream_id(domain_id))])
    assert state is not None and state.enabled and not state.awaiting_check and not state.reserved
