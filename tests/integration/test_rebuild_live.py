"""Rebuilding a projection that is live: nobody ever sees it half built.

Once, rebuilding `prober.schedule` while the prober ran made it probe 1,263 disabled domains
2,743 times: the replay had applied the enables but not yet the disables. Now the rebuild
is one transaction: readers see the old rows until the new ones replace them at once, the
prober's claims skip what the rebuild holds, and a live runner continues after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime

from certwatch.contracts import domain as dc
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent
from certwatch.platform.projection import Projection, catch_up, rebuild
from certwatch.prober import schedule


def _lifecycle(domain_id: str, account_id: str, *, disabled: bool) -> list[NewEvent]:
    today = datetime.now(UTC).date().isoformat()
    base = {"domain_id": domain_id, "account_id": account_id}
    events = [NewEvent(dc.MONITORING_ENABLED, {**base, "host": f"h{domain_id[:8]}.test", "port": 443,
                                               "generation": 1, "enabled_at": datetime.now(UTC).isoformat(), "period_start": today,
                                               "service_ends_on": today})]  # fmt: skip
    if disabled:
        events.append(NewEvent(dc.MONITORING_DISABLED, base))
    return events


async def test_probers_never_claim_a_disabled_domain_during_a_schedule_rebuild(event_log: EventLog) -> None:
    account = str(uuid.uuid4())
    live, off = [str(uuid.uuid4()) for _ in range(20)], [str(uuid.uuid4()) for _ in range(400)]
    # Every enable first, then every disable: a replay half done has enabled them all.
    await event_log.append_batch(
        [(f"domain-{i}", _lifecycle(i, account, disabled=False), None) for i in live + off]
    )
    await event_log.append_batch([(f"domain-{i}", [NewEvent(dc.MONITORING_DISABLED, {"domain_id": i,
                                   "account_id": account})], None) for i in off])  # fmt: skip
    assert await catch_up(event_log, schedule.SCHEDULE) == 420 + 400

    claimed: list[str] = []
    done = asyncio.Event()

    async def claim() -> list[str]:
        async with event_log.pool.connection() as conn, conn.transaction():
            return [x.domain_id for x in await schedule.claim(conn, worker="w", limit=500, lease_s=0)]

    async def prober() -> None:
        for _ in range(100_000):
            if done.is_set():
                return
            claimed.extend(await claim())
            await asyncio.sleep(0)

    assert sorted(await claim()) == sorted(live)  # what a prober claims outside a rebuild
    task = asyncio.create_task(prober())
    paged = dataclasses.replace(schedule.SCHEDULE, page=100)  # a replay of many pages, as at scale
    for _ in range(3):
        assert await rebuild(event_log, paged) == 820
    done.set()
    await asyncio.wait_for(task, 30)
    claimed.extend(await claim())
    assert set(claimed) == set(live), f"{len(set(claimed) - set(live))} disabled domains were claimed"


async def test_readers_see_the_old_rows_or_the_new_ones_never_a_part(event_log: EventLog) -> None:
    kind = f"Row{uuid.uuid4().hex[:8]}"
    table = f"rows_{uuid.uuid4().hex[:8]}"
    async with event_log.pool.connection() as conn:
        await conn.execute(f"CREATE TABLE {table} (n int PRIMARY KEY)")
    await event_log.append_batch([(f"rows-{i}", [NewEvent(kind, {"n": i})], None) for i in range(3000)])

    async def handle(conn: Conn, event: RecordedEvent) -> None:
        await conn.execute(f"INSERT INTO {table} VALUES (%s)".encode(), (event.data["n"],))

    projection = Projection(name=f"rows.{kind}", event_types=[kind], handle=handle,
                            reset_sql=[f"DELETE FROM {table}"])  # fmt: skip
    assert await catch_up(event_log, projection) == 3000
    counts: set[int] = set()
    done = asyncio.Event()

    async def reader() -> None:
        for _ in range(100_000):
            async with event_log.pool.connection() as conn:
                row = await (await conn.execute(f"SELECT count(*) FROM {table}".encode())).fetchone()
            assert row is not None
            counts.add(int(row[0]))
            if done.is_set():
                return
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    rebuilt = asyncio.create_task(rebuild(event_log, projection))
    await asyncio.sleep(0.05)
    # Events keep arriving and a live runner keeps applying them during the rebuild.
    await event_log.append_batch([(f"late-{i}", [NewEvent(kind, {"n": 3000 + i})], None) for i in range(10)])
    live = asyncio.create_task(catch_up(event_log, projection))
    replayed = await rebuilt
    applied_live = await live
    done.set()
    await asyncio.wait_for(task, 30)
    assert counts <= {3000, 3010}, sorted(counts)
    assert replayed + applied_live == 3010  # each event applied once, however the two interleaved
    async with event_log.pool.connection() as conn:
        row = await (await conn.execute(f"SELECT count(*) FROM {table}".encode())).fetchone()
    assert row == (3010,)
