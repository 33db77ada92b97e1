"""The outbox relay: publishes committed events from the log to JetStream, in order.

The event log itself is the outbox: an event is committed with the rows it changes, and the
relay publishes everything past its bookmark. A crash between publish and bookkeeping
republishes, and JetStream drops the repeat by `Nats-Msg-Id` (the event id). One relay is
active at a time, chosen by a PostgreSQL advisory lock, so every service can run one. It
polls the log when idle (an indexed probe every 20 ms) instead of LISTEN/NOTIFY: NOTIFY
takes a cluster-wide lock at every commit, which would serialise all appends again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError

from certwatch.platform import bus as busmod
from certwatch.platform import log_signal
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import JsonEvent
from certwatch.platform.health import Progress
from certwatch.platform.jetstream_publish import Message, publish_all
from certwatch.platform.telemetry import counter

log = logging.getLogger(__name__)

_LEADER_LOCK = 0x6F757462  # "outb"
BATCH = 512


class OutboxRelay:
    def __init__(
        self,
        event_log: EventLog,
        bus: busmod.Bus,
        database_url: str,
        *,
        name: str = "jetstream",
        idle_poll_s: float = 0.02,
        standby_s: float = 0.0,
        after_publish: Callable[[list[JsonEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self._log = event_log
        self._bus = bus
        self._url = database_url
        self._name = name
        self._idle_poll_s = idle_poll_s
        self._standby_s = standby_s
        self._after_publish = after_publish  # a test hook to crash between publish and bookmark
        self._stop = asyncio.Event()
        self.published = 0
        self.duplicates = 0
        self.progress = Progress()

    @property
    def name(self) -> str:
        return self._name

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run until stopped: wait for leadership, then relay; retry after failures."""
        while not self._stop.is_set():
            try:
                await self._lead()
            except (psycopg.OperationalError, NatsError, JetStreamError, OSError) as exc:
                self.progress.failed(exc)
                log.warning("outbox relay interrupted, retrying", extra={"error": str(exc)})
                await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _lead(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            self.progress.ok()  # connected: a standby waiting for leadership is healthy
            await self._sleep(self._standby_s)
            while not self._stop.is_set():
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LEADER_LOCK,))
                row = await cur.fetchone()
                if row and row[0]:
                    break
                await self._sleep(2.0)
            if self._stop.is_set():
                return
            await conn.execute(
                "INSERT INTO outbox_relay (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (self._name,),
            )
            while not self._stop.is_set():
                if await self.relay_once(conn):
                    self.progress.advanced()
                else:
                    self.progress.ok()
                    await self._sleep(self._idle_poll_s)  # a cheap indexed probe of the log

    async def relay_once(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Publish the next batch after the bookmark; return how many events were relayed."""
        cur = await conn.execute(
            "SELECT transaction_id::text, position FROM outbox_relay WHERE name = %s", (self._name,)
        )
        row = await cur.fetchone()
        bookmark = (int(row[0]), int(row[1])) if row else (0, 0)
        events = await self._log.read_all_json(bookmark, limit=BATCH)
        if not events:
            return 0
        acks = await publish_all(self._bus.nc, [_message(e) for e in events])
        dup = sum(acks)
        self.duplicates += dup
        self.published += len(events) - dup
        published = counter("certwatch.outbox.published", description="events relayed to JetStream")
        for event_type, n in Counter(
            e.type for e, duplicate in zip(events, acks, strict=True) if not duplicate
        ).items():
            published.add(n, {"event.type": event_type})
        if self._after_publish is not None:
            await self._after_publish(events)
        await conn.execute(
            "UPDATE outbox_relay SET transaction_id = %s::text::xid8, position = %s, updated_at = now()"
            " WHERE name = %s",
            (str(events[-1].transaction_id), events[-1].position, self._name),
        )
        await self._bus.nc.publish(log_signal.SUBJECT, log_signal.encode(events))  # wakes the runners
        return len(events)


def _message(event: JsonEvent) -> Message:
    headers = {
        "Nats-Msg-Id": event.event_id,
        busmod.POSITION_HEADER: str(event.position),
        busmod.TYPE_HEADER: event.type,
    }
    if event.traceparent:
        headers["traceparent"] = event.traceparent
    return Message(busmod.subject_for(event), busmod.encode_json(event), headers)
