"""A re-check makes the domain due now in the probe schedule, as an enable check when it is
one, including domains whose enable failed before re-checks had events of their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.contracts import status as sc
from certwatch.inventory import domain as d
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up
from certwatch.prober.schedule import SCHEDULE
from tests.support.verdicts import classified

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


async def _row(pool: AsyncConnectionPool[Any], domain_id: uuid.UUID) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT port, generation, first_check, paused, next_due <= now() FROM probe_schedule"
            " WHERE domain_id = %s", (domain_id,),
        )  # fmt: skip
        row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def _append(event_log: EventLog, domain_id: uuid.UUID, events: list[d.Event]) -> None:
    await event_log.append(dc.stream_id(domain_id), [NewEvent(t, x, schema_version=d.schema_version(t))
                                                    for t, x in events], expected_version=None)  # fmt: skip
    await catch_up(event_log, SCHEDULE)


async def _failed(event_log: EventLog, account: uuid.UUID, domain_id: uuid.UUID, generation: int) -> None:
    event = classified(
        domain_id, account, "ENABLE_FAILED", generation=generation, first_check=True, checked_at=NOW
    )
    await event_log.append(sc.stream_id(str(domain_id)), [event], expected_version=None)
    await catch_up(event_log, SCHEDULE)


async def test_a_retry_is_due_now_as_an_enable_check_of_a_new_generation(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "retry.example.com", 443, (), NOW)
    quota = d.quota_from([(qc.QUOTA_PURCHASED, {"units": 1})])
    enabled = [e for e in d.enable(d.evolve(None, *added), quota, NOW) if e[0] not in qc.QUOTA_EVENTS]
    await _append(event_log, domain_id, [added, *enabled])
    await _failed(event_log, account, domain_id, 1)
    assert await _row(pool, domain_id) == (443, 1, True, True, True)  # paused after the failure
    state = d.fold([added, *enabled, *d.conclude_enable_check(
        d.fold([added, *enabled]), generation=1, status="ENABLE_FAILED", checked_at=NOW)])  # fmt: skip
    assert state is not None
    retry = d.edit_and_recheck(state, port=None, contact_ids=None, quota_state=quota, now=NOW)
    await _append(event_log, domain_id, [e for e in retry if e[0] not in qc.QUOTA_EVENTS])
    assert await _row(pool, domain_id) == (443, 2, True, False, True)


async def test_a_domain_whose_enable_failed_before_retries_had_events_is_retried_as_an_enable(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "old.example.com", 443, (), NOW)
    v1 = {"domain_id": str(domain_id), "account_id": str(account), "host": "old.example.com", "port": 443,
          "period_start": "2026-03-01", "service_ends_on": "2027-02-28", "generation": 1,
          "enabled_at": NOW.isoformat()}  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), [NewEvent(*added), NewEvent(dc.MONITORING_ENABLED, v1)],
                           expected_version=0)  # fmt: skip
    await catch_up(event_log, SCHEDULE)
    await _failed(event_log, account, domain_id, 1)
    recorded = await event_log.read_stream(dc.stream_id(domain_id))
    state = d.fold([(e.type, e.data) for e in recorded])
    assert state is not None and not state.enable_failed  # the log never said so
    # A new port: the edit unpauses the row, the re-check after it must stay an enable check.
    await _append(event_log, domain_id, d.edit_and_recheck(state, port=8443, contact_ids=None,
                                                           quota_state=None, now=NOW))  # fmt: skip
    assert await _row(pool, domain_id) == (8443, 1, True, False, True)
