"""Outbox relay throughput to JetStream vs a bare JetStream publish loop.

Run alone: `.venv/bin/python -m bench.outbox` (from the repo root).

The log is filled first (append_batch). Then, in interleaved rounds on the same servers:
- measured: `OutboxRelay.relay_once` in a loop (read_all 512 after the bookmark, gather
  512 `js.publish` with `Nats-Msg-Id` = event id, UPDATE the bookmark);
- reference: a bare loop of `js.publish` in gathers of 512, pre-encoded payloads of the same
  size, unique `Nats-Msg-Id` headers, into the same stream (same dedup window).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg

from bench._common import Row, bounded, cli, fresh_servers, pg_settings, save
from certwatch.platform import bus as busmod
from certwatch.platform import db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.outbox import BATCH, OutboxRelay
from certwatch.services import MIGRATIONS

BENCH = "outbox"
ROUNDS = 3
CHUNK = 10 * BATCH  # events per round and side
FILL = ROUNDS * CHUNK


def _payload(i: int) -> dict[str, Any]:
    return {"domain_id": str(uuid.uuid4()), "host": f"d{i}.example.com", "port": 443,
            "generation": 1, "source": "bench"}  # fmt: skip


async def run() -> list[Row]:
    with fresh_servers("outbox") as (pg, nats):
        pool = await db.open_pool(pg.url, min_size=2, max_size=4, migrate=MIGRATIONS)
        bus = await busmod.connect(nats.url, name="bench-outbox")
        try:
            async with pool.connection() as conn:
                settings = await pg_settings(conn)
            log = EventLog(pool)
            meta = {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
            for start in range(0, FILL, 500):
                await log.append_batch([(f"domain-{j % 500}", [NewEvent("BenchDomainAdded", _payload(j),
                                         metadata=meta)], None) for j in range(start, start + 500)])  # fmt: skip
            sample = (await log.read_all(limit=1))[0]
            payload = busmod.encode(sample)
            relay = OutboxRelay(log, bus, pg.url, name="bench")
            relay_s = bare_s = 0.0
            relayed = published = 0
            async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as conn:
                await conn.execute("INSERT INTO outbox_relay (name, position) VALUES ('bench', 0)")
                for _ in range(ROUNDS):
                    async with bounded(120, "relay round"):
                        t0 = time.perf_counter()
                        goal = relayed + CHUNK
                        for _ in range(CHUNK // BATCH + 2):
                            if relayed >= goal:
                                break
                            moved = await relay.relay_once(conn)
                            if not moved:
                                break
                            relayed += moved
                        relay_s += time.perf_counter() - t0
                    async with bounded(120, "bare publish round"):
                        t0 = time.perf_counter()
                        for _ in range(CHUNK // BATCH):
                            await asyncio.gather(*(
                                bus.js.publish("cw.events.benchbare.Published", payload, headers={
                                    "Nats-Msg-Id": str(uuid.uuid4()),
                                    busmod.POSITION_HEADER: str(sample.position),
                                    busmod.TYPE_HEADER: sample.type,
                                    "traceparent": meta["traceparent"]})
                                for _ in range(BATCH)))  # fmt: skip
                            published += BATCH
                        bare_s += time.perf_counter() - t0
            info = await bus.js.stream_info(busmod.STREAM)
            stream_msgs = info.state.messages
        finally:
            await bus.close()
            await pool.close()

    relay_rate, bare_rate = relayed / relay_s, published / bare_s
    note = f"synchronous_commit={settings.get('synchronous_commit')}; {len(payload)} B payload"
    rows = [
        Row(BENCH, f"relay_once loop -> JetStream (gather {BATCH}, Nats-Msg-Id)", relay_rate,
            "events/s", f"bare js.publish, gathers of {BATCH}", bare_rate, note=note),
    ]  # fmt: skip
    context = {
        "postgres": settings, "rounds": ROUNDS, "chunk": CHUNK, "relayed": relayed,
        "relay_s": round(relay_s, 3), "published": published, "bare_s": round(bare_s, 3),
        "relay_published": relay.published, "relay_duplicates": relay.duplicates,
        "stream_messages": stream_msgs, "payload_bytes": len(payload),
    }  # fmt: skip
    save(BENCH, rows, context)
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
