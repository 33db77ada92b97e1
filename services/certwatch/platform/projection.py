"""Projections and processors: handlers applied to the log in global order, exactly once.

A runner wakes on the outbox relay's "log advanced" signal (`log_signal`) but reads the
events themselves from the PostgreSQL log, from its checkpoint up to the log's safe horizon,
so a signal lost, a runner started behind, or an event that committed late can never make
it skip an event. The handler's rows, any events it appends and the new checkpoint commit in
one transaction: each event changes a projection exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import psycopg
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.trace import Link, StatusCode
from psycopg_pool import PoolTimeout

from certwatch.platform import bus as busmod
from certwatch.platform import log_signal, telemetry
from certwatch.platform.errors import TransientStoreError
from certwatch.platform.eventlog import Conn, Cursor, EventLog
from certwatch.platform.events import RecordedEvent, subject_filter
from certwatch.platform.health import Progress

log = logging.getLogger(__name__)

Handler = Callable[[Conn, RecordedEvent], Awaitable[None]]
BatchHandler = Callable[[Conn, Sequence[RecordedEvent]], Awaitable[None]]

# Pages up to this size get a span per event, parented by the event's own trace (live
# traffic: one trace per domain); bigger pages (replays, rebuilds) get one span per page.
_SPAN_PER_EVENT_UP_TO = 64


@dataclass(frozen=True)
class Projection:
    """`name` is the checkpoint key; `reset_sql` empties its rows for a rebuild.

    Give `handle` (one event at a time) or `handle_batch` (a page at a time, for
    projections that see many events and can write a page with one statement).
    `after_commit` runs after each committed page that applied events.
    """

    name: str
    event_types: Sequence[str]
    handle: Handler | None = None
    reset_sql: Sequence[str] = ()
    subject: str = subject_filter()
    handle_batch: BatchHandler | None = None
    after_commit: Callable[[], None] | None = None
    # Events a page holds. A read-your-writes caller (`catch_up_past`) waits for the page
    # being applied to commit: a projection that commands wait on keeps its pages short.
    page: int = 2000

    def __post_init__(self) -> None:
        if (self.handle is None) == (self.handle_batch is None):
            raise ValueError(f"projection {self.name}: give exactly one of handle and handle_batch")


T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class PayloadType(Protocol[T_co]):
    """A typed event payload: its event type, and how to read it from a recorded event."""

    @property
    def TYPE(self) -> str: ...

    def of(self, event: RecordedEvent) -> T_co: ...


def of_payloads(
    name: str, payload: PayloadType[T], apply: Callable[[Conn, T], Awaitable[None]], *,
    subject: str, reset_sql: Sequence[str] = (),
) -> Projection:  # fmt: skip
    """A projection of one event type whose handler gets the typed payload."""

    async def handle(conn: Conn, event: RecordedEvent) -> None:
        await apply(conn, payload.of(event))

    return Projection(
        name=name, event_types=[payload.TYPE], handle=handle, reset_sql=reset_sql, subject=subject
    )


async def checkpoint(conn: Conn, name: str) -> Cursor:
    cur = await conn.execute(
        "SELECT transaction_id::text, position FROM checkpoints WHERE name = %s", (name,)
    )
    row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def catch_up(
    event_log: EventLog, projection: Projection, *, page: int | None = None, conn: Conn | None = None,
    past: Cursor | None = None,
) -> int:  # fmt: skip
    """Apply every event after the checkpoint up to the log's safe horizon (or only up to
    the transaction that wrote `past`); return the count.

    The checkpoint is locked for each page's transaction, so replicas of one projection
    never apply the same event twice. A page holds whole appends (see `read_all`), so a
    projection's readers never see half of one. While a full page is applied, the next one is read on
    a second connection (reading and writing overlap; a replay runs about as fast as the
    slower of the two); it is used only if the checkpoint is still where it was expected.
    """
    size = page or projection.page
    if conn is not None:  # inside the caller's transaction: pages are savepoints, no hook
        return await _pages(event_log, projection, size, conn, after_commit=None, past=past)
    async with event_log.pool.connection() as own:
        return await _pages(event_log, projection, size, own, after_commit=projection.after_commit, past=past)


async def _pages(
    event_log: EventLog, projection: Projection, page: int, conn: Conn,
    after_commit: Callable[[], None] | None, past: Cursor | None,
) -> int:  # fmt: skip
    applied = 0
    ahead: asyncio.Task[list[RecordedEvent]] | None = None
    ahead_of: Cursor | None = None
    try:
        for _ in range(1_000_000):  # bounded: a page at a time until caught up
            async with conn.transaction():
                start = await _lock_checkpoint(conn, projection.name)
                if past is not None and start >= past:
                    return applied
                if ahead is not None and ahead_of == start:
                    events = await ahead
                else:
                    await _discard(ahead)
                    events = await event_log.read_all(
                        start,
                        limit=page,
                        types=projection.event_types,
                        conn=conn,
                        whole_transactions=True,
                    )
                ahead = None
                if past is not None:  # up to the end of the transaction that wrote `past`
                    events = [e for e in events if e.transaction_id <= past[0]]
                if not events:
                    return applied
                if len(events) >= page and (past is None or events[-1].cursor < past):
                    ahead_of = events[-1].cursor
                    ahead = asyncio.create_task(
                        event_log.read_all(
                            ahead_of, limit=page, types=projection.event_types, whole_transactions=True
                        )
                    )
                await _apply_page(projection, conn, events)
                last = events[-1]
                await conn.execute(
                    "UPDATE checkpoints SET transaction_id = %s::text::xid8, position = %s,"
                    " updated_at = now() WHERE name = %s",
                    (str(last.transaction_id), last.position, projection.name),
                )
            applied += len(events)
            if after_commit is not None:
                after_commit()
            if len(events) < page:  # a page that ended short (whole transactions may run over)
                return applied
    finally:
        await _discard(ahead)
    return applied


async def _lock_checkpoint(conn: Conn, name: str) -> Cursor:
    """The checkpoint, held until the transaction ends. By an advisory lock, not `FOR
    UPDATE`: locking a row gives the transaction an id at once, and every reader of the log
    waits for the oldest running transaction with an id (the horizon), so a page locked
    that way held back every projection, and every command waiting on one, for the whole
    time the page was read and folded. Now it takes an id only when it first writes.

    The row is created the first time only, under the lock (every catch-up of every runner
    used to send the INSERT first: a round trip each, about 2,000 a run of enable_at_scale)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"checkpoint {name}",))
    cur = await conn.execute(
        "SELECT transaction_id::text, position FROM checkpoints WHERE name = %s", (name,)
    )
    row = await cur.fetchone()
    if row is None:
        await conn.execute(
            "INSERT INTO checkpoints (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING", (name,)
        )
        return (0, 0)
    return (int(row[0]), int(row[1]))


async def _discard(task: asyncio.Task[list[RecordedEvent]] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
            await task


async def catch_up_past(
    event_log: EventLog, projection: Projection, cursor: Cursor, *, timeout_s: float = 5.0
) -> None:
    """Return once the projection has applied everything up to `cursor` (read-your-writes
    for the caller that just appended it). It waits only for transactions that were running
    when it committed, so this takes milliseconds; past `timeout_s` it gives up quietly and
    the runner finishes the job.

    The runner is usually there first: the checkpoint is read without its lock, and when it
    is behind, this applies pages only until it has passed `cursor`, not up to the head (a
    busy log's later events are the runner's)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    for _ in range(100_000):
        async with event_log.pool.connection() as conn:
            passed, applied = await _horizon_passed(conn, cursor, projection.name)
        if applied:
            return
        if passed or asyncio.get_running_loop().time() > deadline:
            await catch_up(event_log, projection, past=cursor)  # reads past `cursor` once the horizon has
            return
        await asyncio.sleep(0.002)


async def catch_up_now(event_log: EventLog, projection: Projection, *, timeout_s: float = 5.0) -> None:
    """Return once the projection has applied every event committed before this call:
    read-your-writes for a query, whatever its caller wrote before asking is in the
    answer. Commands can answer without waiting for a view (folding their own events into
    its row); the wait is then here, where a reader asks, and only as long as the view
    is behind (two indexed lookups when it is current). A view stuck on an event it cannot
    apply answers from where it stands: its runner reports it (`certwatch status`), and
    the list says its verdicts may be stale."""
    async with event_log.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT transaction_id::text, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1"
        )
        row = await cur.fetchone()
    if row is None:
        return
    try:
        await catch_up_past(event_log, projection, (int(row[0]), int(row[1])), timeout_s=timeout_s)
    except (psycopg.OperationalError, PoolTimeout, TransientStoreError):
        raise  # the reader's own query would fail the same way: its caller answers UNAVAILABLE
    except Exception as exc:  # a handler fails on an event: the runner retries it and reports
        log.warning("projection %s cannot catch up for a reader; it answers from where it stands",
                    projection.name, extra={"error": f"{type(exc).__name__}: {exc}"})  # fmt: skip


async def _horizon_passed(conn: Conn, cursor: Cursor, name: str) -> tuple[bool, bool]:
    """Whether every transaction up to `cursor`'s has ended, and whether the projection
    `name` has applied `cursor` already."""
    cur = await conn.execute(
        "SELECT %s::text::xid8 < pg_snapshot_xmin(pg_current_snapshot()),"
        " coalesce((SELECT (transaction_id, position) >= (%s::text::xid8, %s) FROM checkpoints"
        " WHERE name = %s), false)",
        (str(cursor[0]), str(cursor[0]), cursor[1], name),
    )
    row = await cur.fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


async def _apply_page(projection: Projection, conn: Conn, events: Sequence[RecordedEvent]) -> None:
    if not telemetry.recording():  # spans nobody records would only cost their contexts
        async with conn.pipeline():
            await _handle(projection, conn, events)
        return
    tracer = telemetry.tracer()
    if len(events) <= _SPAN_PER_EVENT_UP_TO and projection.handle_batch is not None:
        # A page handler applies even a short page in one go (its statements are per page,
        # not per event); each event's span, in the event's own trace, covers that.
        spans = [tracer.start_span(f"{projection.name} {event.type}", context=_parent(event),
                                   attributes=_event_attributes(event)) for event in events]  # fmt: skip
        try:
            async with conn.pipeline():
                await projection.handle_batch(conn, events)
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(StatusCode.ERROR, str(exc))
            raise
        finally:
            for span in spans:
                span.end()
        return
    if len(events) <= _SPAN_PER_EVENT_UP_TO:
        async with conn.pipeline():
            for event in events:
                with tracer.start_as_current_span(
                    f"{projection.name} {event.type}",
                    context=_parent(event),
                    attributes=_event_attributes(event),
                ):
                    await _handle(projection, conn, [event])
        return
    links = [Link(ctx) for ctx in _span_contexts(events[:32])]
    with tracer.start_as_current_span(
        f"{projection.name} page", links=links,
        attributes={"certwatch.events": len(events), "certwatch.first_position": events[0].position},
    ):  # fmt: skip
        async with conn.pipeline():
            await _handle(projection, conn, events)


def _parent(event: RecordedEvent) -> Any:
    traceparent = event.metadata.get("traceparent")
    return telemetry.context_from({"traceparent": traceparent} if traceparent else None)


def _event_attributes(event: RecordedEvent) -> dict[str, Any]:
    return {"certwatch.position": event.position, "certwatch.stream": event.stream_id}


async def _handle(projection: Projection, conn: Conn, events: Sequence[RecordedEvent]) -> None:
    if projection.handle_batch is not None:
        await projection.handle_batch(conn, events)
        return
    assert projection.handle is not None
    for event in events:
        await projection.handle(conn, event)


def _span_contexts(events: Sequence[RecordedEvent]) -> list[Any]:
    contexts = []
    for event in events:
        traceparent = event.metadata.get("traceparent")
        if traceparent:
            span = trace.get_current_span(telemetry.context_from({"traceparent": traceparent}))
            if span.get_span_context().is_valid:
                contexts.append(span.get_span_context())
    return contexts


async def rebuild(event_log: EventLog, projection: Projection) -> int:
    """Empty the projection and replay the whole log into it, in one transaction; return
    how many events it replayed.

    Nobody sees a half-built projection: readers see the old rows until the commit swaps
    in the new ones, the projection's live runners wait on its checkpoint lock and then go
    on from where the rebuild stopped, and claim queries skip the rows it holds locked
    (`SKIP LOCKED`) instead of acting on a half-rebuilt table.
    """
    async with event_log.pool.connection() as conn, conn.transaction():
        await _lock_checkpoint(conn, projection.name)
        for sql in projection.reset_sql:
            await conn.execute(sql.encode())
        await conn.execute(
            "UPDATE checkpoints SET transaction_id = '0'::xid8, position = 0 WHERE name = %s",
            (projection.name,),
        )
        applied = await catch_up(event_log, projection, conn=conn)
    if projection.after_commit is not None:
        projection.after_commit()
    return applied


class ProjectionRunner:
    """Keeps one projection current: woken by the relay's "log advanced" signal (or its idle
    poll), it reads the log, which is the truth."""

    def __init__(
        self,
        event_log: EventLog,
        projection: Projection,
        bus: busmod.Bus | None,
        *,
        durable: str | None = None,
        idle_poll_s: float = 1.0,
        coalesce_s: float = 0.05,
    ) -> None:
        self._log = event_log
        self._projection = projection
        self._bus = bus
        self._durable = durable or projection.name.replace(".", "_")
        self._idle_poll_s = idle_poll_s
        self._coalesce_s = coalesce_s
        self._busy_at = -coalesce_s  # when a catch-up last applied events (loop time)
        self._wanted = frozenset(projection.event_types)
        self._stop = asyncio.Event()
        self._woken = asyncio.Event()
        self._woken.set()  # catch up at once on start
        self.applied = 0
        self.progress = Progress()

    @property
    def projection(self) -> Projection:
        return self._projection

    @property
    def failing(self) -> bool:
        return self.progress.failing

    def stop(self) -> None:
        self._stop.set()
        self._woken.set()

    async def run(self) -> None:
        sub = None
        failures = 0
        while not self._stop.is_set():
            try:
                if sub is None and self._bus is not None:
                    sub = await self._subscribe()
                await self._wait()
                self._applied(await catch_up(self._log, self._projection))
                failures = 0
            except (NatsError, JetStreamError) as exc:
                log.warning("projection %s: NATS unavailable, polling the log", self._projection.name,
                            extra={"error": str(exc)})  # fmt: skip
                sub = None
                self._applied(await self._catch_up_safely())
                await self._sleep(self._idle_poll_s)
            except psycopg.OperationalError as exc:
                self.progress.failed(exc)
                log.warning("projection %s: database unavailable", self._projection.name,
                            extra={"error": str(exc)})  # fmt: skip
                await self._sleep(1.0)
            except Exception as exc:
                # A handler failed: its transaction rolled back and the checkpoint stayed. The
                # event cannot be skipped (projections never skip), so retry with backoff and
                # report unhealthy meanwhile (`certwatch status` shows the error and since when).
                failures += 1
                self.progress.failed(exc)
                log.exception("projection %s failed (attempt %d); retrying", self._projection.name, failures)
                await self._sleep(min(60.0, 0.25 * 2 ** min(failures, 8)))
        if sub is not None:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        await self._catch_up_safely()  # drain: apply what committed before stopping

    def _applied(self, count: int) -> None:
        self.applied += count
        if count:
            self._busy_at = asyncio.get_running_loop().time()
            self.progress.advanced()
        else:
            self.progress.ok()

    async def _catch_up_safely(self) -> int:
        try:
            return await catch_up(self._log, self._projection)
        except psycopg.OperationalError as exc:
            self.progress.failed(exc)
            return 0
        except Exception as exc:
            self.progress.failed(exc)
            log.exception("projection %s failed while catching up", self._projection.name)
            return 0

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _subscribe(self) -> Any:
        assert self._bus is not None
        await self._drop_old_durable()

        async def on_signal(msg: Any) -> None:
            if self._wanted.intersection(log_signal.types(msg.data)):
                self._woken.set()

        return await self._bus.nc.subscribe(log_signal.SUBJECT, cb=on_signal)

    async def _drop_old_durable(self) -> None:
        """Earlier versions woke each projection through a JetStream durable of its own; one
        left behind would only make the server keep state and deliver to nobody."""
        assert self._bus is not None
        with contextlib.suppress(NotFoundError):
            await self._bus.js.delete_consumer(busmod.STREAM, self._durable)
            log.info("consumer %s of an earlier version deleted", self._durable)

    async def _wait(self) -> None:
        """Until a signal names one of the projection's event types, or the idle poll is due
        (a catch-up then repairs any signal that was lost). While events keep coming, wake at
        most once a `coalesce_s`: a catch-up costs a few statements however many events it
        applies, so under load pages grow instead of the database's work; the first event
        after a quiet spell is applied at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), self._idle_poll_s)
        busy_for = self._busy_at + self._coalesce_s - asyncio.get_running_loop().time()
        if busy_for > 0:
            await self._sleep(busy_for)
        self._woken.clear()  # before the catch-up: a signal arriving during it wakes the next
