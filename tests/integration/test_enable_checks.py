"""The inventory learns each enable check's outcome from the classifier's verdicts, exactly
once, through the real event log; events written before reservations keep their meaning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.contracts import status as sc
from certwatch.inventory import domain as d
from certwatch.inventory import enable_checks
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up, rebuild
from tests.support.verdicts import classified

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


async def _types(event_log: EventLog, stream: str) -> list[str]:
    return [e.type for e in await event_log.read_stream(stream)]


async def _quota(event_log: EventLog, account: uuid.UUID) -> tuple[int, int, int]:
    q = d.quota_from([(e.type, e.data) for e in await event_log.read_stream(qc.stream_id(account))])
    return q.purchased_units, q.consumed_units, q.reserved_units


async def _enabled_domain(event_log: EventLog) -> tuple[uuid.UUID, uuid.UUID]:
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "check.example.com", 443, (), NOW)
    quota = d.quota_from([(qc.QUOTA_PURCHASED, {"units": 1})])
    events = [added, *d.enable(d.evolve(None, *added), quota, NOW)]
    await event_log.append_batch([
        (dc.stream_id(domain_id), [NewEvent(t, x, schema_version=d.schema_version(t))
                                  for t, x in events if t not in qc.QUOTA_EVENTS], 0),
        (qc.stream_id(account), [NewEvent(qc.QUOTA_PURCHASED, {"units": 1}),
                                      *(NewEvent(t, x) for t, x in events if t in qc.QUOTA_EVENTS)], None),
    ])  # fmt: skip
    return account, domain_id


async def _verdict(event_log: EventLog, account: uuid.UUID, domain_id: uuid.UUID, status: str) -> None:
    event = classified(domain_id, account, status, first_check=True, checked_at=NOW)
    await event_log.append(sc.stream_id(str(domain_id)), [event], expected_version=None)


@pytest.mark.parametrize(
    ("status", "concluded", "quota"),
    [("SECURE", dc.MONITORING_STARTED, (1, 1, 0)), ("ENABLE_FAILED", dc.ENABLE_CHECK_FAILED, (1, 0, 0))],
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
    expected = [dc.DOMAIN_ADDED, dc.MONITORING_ENABLED, concluded]
    assert await _types(event_log, dc.stream_id(domain_id)) == expected
    assert await _quota(event_log, account) == quota
    await rebuild(event_log, processor)  # a replay appends nothing twice
    assert await _types(event_log, dc.stream_id(domain_id)) == expected
    assert await _quota(event_log, account) == quota


async def test_events_from_before_reservations_read_as_started(event_log: EventLog) -> None:
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "old.example.com", 443, (), NOW)
    v1 = {"domain_id": str(domain_id), "account_id": str(account), "host": "old.example.com", "port": 443,
          "period_start": "2025-06-01", "service_ends_on": "2026-05-31", "generation": 1,
          "enabled_at": "2025-06-01T00:00:00+00:00"}  # fmt: skip
    await event_log.append_batch([
        (dc.stream_id(domain_id), [NewEvent(*added), NewEvent(dc.MONITORING_ENABLED, v1)], 0),
        (qc.stream_id(account), [NewEvent(qc.QUOTA_PURCHASED, {"units": 2}),
                                      NewEvent(qc.QUOTA_UNIT_CONSUMED, {"period_start": "2025-06-01"})], 0),
    ])  # fmt: skip
    await _verdict(event_log, account, domain_id, "ENABLE_FAILED")
    await catch_up(event_log, enable_checks.processor(event_log))
    # It consumed its unit at enable under the old rule; no enable check of the new kind to conclude.
    assert await _types(event_log, dc.stream_id(domain_id)) == [dc.DOMAIN_ADDED, dc.MONITORING_ENABLED]
    assert await _quota(event_log, account) == (2, 1, 0)
    state = d.fold([(e.type, e.data) for e in await event_log.read_stream(dc.stream_id(domain_id))])
    assert state is not None and state.enabled and not state.awaiting_check and not state.reserved
