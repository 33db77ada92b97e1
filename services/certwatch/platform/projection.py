"""Projections and processors: handlers applied to the log in global order, exactly once.

A runner wakes on JetStream messages (the fast path) but reads the events themselves from
the PostgreSQL log between its checkpoint and the newest position it has heard of, so a
message lost by JetStream, a consumer started behind, or a gap in positions can never
make it skip an event. The handler's rows, any events it appends and the new checkpoint
commit in one transaction: each event changes a projection exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError

from certwatch.platform import bus as busmod
from certwatch.platform import telemetry
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import RecordedEvent

log = logging.getLogger(__name__)

Handler = Callable[[Conn, RecordedEvent], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    """`name` is the checkpoint key; `reset_sql` empties its rows for a rebuild."""

    name: str
    event_types: Sequence[str]
    handle: Handler
    reset_sql: Sequence[str] = ()
    subject: str = f"{busmod.SUBJECT_ROOT}.>"


async def checkpoint(conn: Conn, name: str) -> int:
    cur = await conn.execute("SELECT position FROM checkpoints WHERE name = %s", (name,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def catch_up(
    event_log: EventLog, projection: Projection, *, upto: int | None = None, page: int = 2000
) -> int:
    """Apply every event after the checkpoint (up to `upto`); return how many were applied.

    The checkpoint row is locked for the transaction, so replicas of one projection never
    apply the same event twice.
    """
    applied = 0
    async with event_log.pool.connection() as conn:
        target = upto if upto is not None else await event_log.head(conn=conn)
        while True:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO checkpoints (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                    (projection.name,),
                )
                cur = await conn.execute(
                    "SELECT position FROM checkpoints WHERE name = %s FOR UPDATE",
                    (projection.name,),
                )
                row = await cur.fetchone()
                start = int(row[0]) if row else 0
                if start >= target:
                    return applied
                events = await event_log.read_all(
                    start, limit=page, types=projection.event_types, upto=target, conn=conn
                )
                for event in events:
                    await _apply(projection, conn, event)
                applied += len(events)
                reached = events[-1].position if len(events) == page else target
                await conn.execute(
                    "UPDATE checkpoints SET position = %s, updated_at = now() WHERE name = %s",
                    (reached, projection.name),
                )
            if reached >= target:
                return applied


async def _apply(projection: Projection, conn: Conn, event: RecordedEvent) -> None:
    parent = telemetry.context_from(
        {"traceparent": event.metadata["traceparent"]} if "traceparent" in event.metadata else None
    )
    with telemetry.tracer().start_as_current_span(
        f"{projection.name} {event.type}", context=parent,
        attributes={"certwatch.position": event.position, "certwatch.stream": event.stream_id},
    ):  # fmt: skip
        await projection.handle(conn, event)


async def rebuild(event_log: EventLog, projection: Projection) -> int:
    """Empty the projection and replay the whole log into it."""
    async with event_log.pool.connection() as conn, conn.transaction():
        for sql in projection.reset_sql:
            await conn.execute(sql.encode())
        await conn.execute("DELETE FROM checkpoints WHERE name = %s", (projection.name,))
    return await catch_up(event_log, projection)


class ProjectionRunner:
    """Keeps one projection current: JetStream pull consumer for wake-ups, log for truth."""

    def __init__(
        self,
        event_log: EventLog,
        projection: Projection,
        bus: busmod.Bus | None,
        *,
        durable: str | None = None,
        idle_poll_s: float = 1.0,
        batch: int = 256,
    ) -> None:
        self._log = event_log
        self._projection = projection
        self._bus = bus
        self._durable = durable or projection.name.replace(".", "_")
        self._idle_poll_s = idle_poll_s
        self._batch = batch
        self._stop = asyncio.Event()
        self.applied = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        sub = None
        while not self._stop.is_set():
            try:
                if sub is None and self._bus is not None:
                    sub = await self._subscribe()
                heard, msgs = await self._wait(sub)
                self.applied += await catch_up(self._log, self._projection, upto=heard)
                for msg in msgs:  # only after the commit: a crash before this redelivers
                    await msg.ack()
            except (NatsError, JetStreamError) as exc:
                log.warning("consumer %s: JetStream unavailable, polling the log", self._durable,
                            extra={"error": str(exc)})  # fmt: skip
                sub = None
                self.applied += await self._catch_up_safely()
                await self._sleep(self._idle_poll_s)
            except psycopg.OperationalError as exc:
                log.warning("projection %s: database unavailable", self._projection.name,
                            extra={"error": str(exc)})  # fmt: skip
                await self._sleep(1.0)
        if sub is not None:
            with contextlib.suppress(NatsError, JetStreamError):
                await sub.unsubscribe()
        # drain: apply what we heard of before stopping
        await self._catch_up_safely()

    async def _catch_up_safely(self) -> int:
        try:
            return await catch_up(self._log, self._projection)
        except psycopg.OperationalError:
            return 0

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _subscribe(self) -> Any:
        assert self._bus is not None
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            max_deliver=20,
            ack_wait=30,
            filter_subject=self._projection.subject,
        )
        return await self._bus.js.pull_subscribe(
            self._projection.subject, durable=self._durable, stream=busmod.STREAM, config=config
        )

    async def _wait(self, sub: Any) -> tuple[int | None, list[Any]]:
        """Wait for messages; return the newest position heard of (None: catch up to head)."""
        if sub is None:
            await self._sleep(self._idle_poll_s)
            return None, []
        try:
            msgs = await sub.fetch(self._batch, timeout=self._idle_poll_s)
        except (NatsTimeout, TimeoutError):  # nats-py raises either, depending on the path
            return None, []  # idle: a catch-up to the head repairs anything JetStream lost
        newest = max(int((m.headers or {}).get(busmod.POSITION_HEADER, 0)) for m in msgs)
        return (newest or None), msgs
