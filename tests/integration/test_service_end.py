"""The 365-day service period ends monitoring with an event, counting days while disabled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.inventory import domain as d
from certwatch.inventory import views
from certwatch.inventory.service_end import ServiceEndWorker
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up


async def _status(pool: AsyncConnectionPool[Any], domain_id: uuid.UUID) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT status, enabled FROM inventory_domains WHERE domain_id = %s", (domain_id,))).fetchone()  # fmt: skip
    assert row is not None
    return tuple(row)


async def test_monitoring_ends_after_365_days_including_disabled_time(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    start = datetime(2022, 6, 1, 9, tzinfo=UTC)
    account, domain_id = uuid.uuid4(), uuid.uuid4()
    added = d.add(domain_id, account, "end.example.com", 443, (), start)
    state = d.evolve(None, *added)
    events = [added, *d.enable(state, d.quota_from([(qc.QUOTA_PURCHASED, {"units": 1})]), start)]
    state = d.fold(events)
    assert state is not None  # the enable check passes that day: the 365 days run from it
    events += d.conclude_enable_check(state, generation=1, status="SECURE", checked_at=start)
    domain_events = [NewEvent(t, x, schema_version=d.schema_version(t)) for t, x in events
                     if t not in qc.QUOTA_EVENTS]  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), domain_events, expected_version=0)
    await catch_up(event_log, views.DOMAIN_VIEW)

    last_day = ServiceEndWorker(event_log, clock=lambda: datetime(2023, 5, 31, 23, tzinfo=UTC))
    assert await last_day.run_once() == 0  # 2023-05-31 is the 365th day: still monitored
    assert await _status(pool, domain_id) == ("ENABLING", True)

    after = ServiceEndWorker(event_log, clock=lambda: start + timedelta(days=365))
    assert await after.run_once() == 1
    assert await after.run_once() == 0  # idempotent
    assert await _status(pool, domain_id) == ("SERVICE_ENDED", False)
    types = [e.type for e in await event_log.read_stream(dc.stream_id(domain_id))]
    assert types == [dc.DOMAIN_ADDED, dc.MONITORING_ENABLED, dc.MONITORING_STARTED, dc.SERVICE_ENDED]
