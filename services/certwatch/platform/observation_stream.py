"""Probe observations on JetStream: a bounded stream, apart from the event stream.

The event stream (`platform.bus`) only wakes projections up; the log is the truth. This
one carries telemetry nobody keeps forever, so it is bounded explicitly, in code:

- `max_age` (default 6 h): long enough for a consumer to catch up after a restart or a
  deploy; older observations have been superseded by newer probes of the same domains.
- `max_bytes` (default 1 GiB) with **DiscardPolicy.OLD**: when full, the oldest messages
  go and publishing never fails. With DiscardPolicy.NEW a lagging consumer would make the
  publishers fail, so a publisher would stall or drop its *newest* results, the
  only ones that still matter. A discarded observation costs one probe interval (the next
  probe of that domain observes again), never a wrong status: verdict changes are
  appended to the event log with the observation id as their idempotency key, and a
  status is only ever derived from an observation that was delivered.
- `duplicate_window` (10 min) with the `Nats-Msg-Id` header set to the observation id: a
  publisher that retries a publish (timeout, reconnect) stores it once.
- `max_msg_size` (1 MiB, NATS's default payload limit): a result with full chains fits.

Subjects are `cw.observations.<partition>`, the partition a stable hash of the domain id,
so N consumers can each take some partitions and still see each domain's observations in
order. The event stream's subjects (`cw.events.>`) do not overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from certwatch.platform.bus import add_stream, existing_stream
from certwatch.platform.health import Progress
from certwatch.platform.jetstream_publish import Message, publish_all

log = logging.getLogger(__name__)

STREAM = "CERTWATCH_OBSERVATIONS"
SUBJECT_ROOT = "cw.observations"
PARTITIONS = 16
ID_HEADER = "Nats-Msg-Id"
_EXPECTED_STREAM = "Nats-Expected-Stream"  # what `JetStreamContext.publish(stream=...)` sends
STATUS_HEADER = "Status"  # on the server's status messages to a pull request's inbox
HEARTBEAT = "100"
_NEXT = f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}"
_ANSWER_S = 2.0  # how long the server may take to end a pull request, beyond its expiry


@dataclass(frozen=True, slots=True)
class Limits:
    max_age_s: float = 6 * 3600.0
    max_bytes: int = 1 << 30
    duplicate_window_s: float = 600.0
    max_msg_size: int = 1 << 20

    def __post_init__(self) -> None:
        if self.duplicate_window_s > self.max_age_s:  # JetStream refuses it too, less clearly
            raise ValueError("duplicate_window_s must not exceed max_age_s")


def partition(domain_id: str) -> int:
    return zlib.crc32(uuid.UUID(domain_id).bytes) % PARTITIONS


def subject_for(domain_id: str) -> str:
    return f"{SUBJECT_ROOT}.{partition(domain_id)}"


def stream_config(limits: Limits, *, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=STREAM, subjects=[f"{SUBJECT_ROOT}.>"], storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD, max_age=limits.max_age_s,
        max_bytes=limits.max_bytes, max_msg_size=limits.max_msg_size,
        duplicate_window=limits.duplicate_window_s, num_replicas=replicas,
    )  # fmt: skip


async def ensure_stream(js: JetStreamContext, limits: Limits = Limits(), *, replicas: int = 1) -> None:
    """Create the stream, or bring an existing one's limits to these."""
    config = stream_config(limits, replicas=replicas)
    info = await existing_stream(js, STREAM)
    if info is None:
        await add_stream(js, config)
        log.info("created JetStream stream", extra={"stream": STREAM})
        return
    current = info.config
    wanted = (config.max_age, config.max_bytes, config.discard, config.duplicate_window, config.max_msg_size)
    if (current.max_age, current.max_bytes, current.discard, current.duplicate_window,
            current.max_msg_size) != wanted:  # fmt: skip
        await js.update_stream(config)
        log.info("updated JetStream stream limits", extra={"stream": STREAM})


@dataclass(frozen=True, slots=True)
class Outgoing:
    observation_id: str  # the idempotency key, downstream too
    domain_id: str
    body: bytes  # the message as its contract encodes it


async def publish(nc: NatsClient, observations: Sequence[Outgoing]) -> int:
    """Publish (pipelined); return how many JetStream had already stored (duplicates)."""
    duplicates = await publish_all(nc, [
        Message(subject_for(o.domain_id), o.body, {ID_HEADER: o.observation_id, _EXPECTED_STREAM: STREAM})
        for o in observations
    ])  # fmt: skip
    return sum(duplicates)


@dataclass(frozen=True, slots=True)
class Incoming:
    observation_id: str
    body: bytes  # undecoded: the handler decodes it once, with its contract
    delivered: int  # 1 the first time; more after a consumer failed before acknowledging


Handler = Callable[[Sequence[Incoming]], Awaitable[None]]


class ObservationConsumer:
    """A durable pull consumer (`platform.service.Worker`): fetch a batch, hand it to the
    handler, acknowledge after the handler returns (so a crash redelivers: the handler
    must be idempotent by observation id). A batch whose handler raises is not
    acknowledged and comes back after `ack_wait_s`.

    It pulls over a plain subscription to its own inbox rather than nats-py's
    `pull_subscribe().fetch`, which waits for each message of a batch with its own
    timeout task (about 100 us of CPU a message, the consumer's whole budget): the
    subscription's callback collects what the server sends, and a fetch waits once, for
    its batch or for the server's end of the request (a 404/408 status), whichever first.
    A fetch first asks for what is there (`no_wait`) and, finding nothing, waits up to
    `idle_poll_s` for the first message; what a request delivers after its fetch returned
    is kept for the next one (its ack wait runs from delivery, as with nats-py's)."""

    def __init__(
        self, nc: NatsClient, durable: str, handler: Handler, *, batch: int = 512,
        idle_poll_s: float = 1.0, ack_wait_s: float = 30.0, filter_subject: str = f"{SUBJECT_ROOT}.>",
    ) -> None:  # fmt: skip
        self._nc = nc
        self._js = nc.jetstream(timeout=5)
        self._durable = durable
        self._handler = handler
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._ack_wait_s = ack_wait_s
        self._filter = filter_subject
        self._inbox: str | None = None
        self._sub: Any = None
        self._received: list[Msg] = []
        self._ends = 0  # pull requests the server has ended (status messages)
        self._ahead: int | None = None  # `_request` of one sent before the last batch was handled
        self._arrived = asyncio.Event()
        self._stop = asyncio.Event()
        self.progress = Progress()
        self.handled = 0

    @property
    def failing(self) -> bool:
        return self.progress.failing

    def stop(self) -> None:
        self._stop.set()

    async def _subscription(self) -> str:
        """The durable consumer made if missing (as `pull_subscribe` would), and our inbox."""
        if self._inbox is None:
            try:
                await self._js.consumer_info(STREAM, self._durable)
            except NotFoundError:
                await self._js.add_consumer(STREAM, ConsumerConfig(
                    durable_name=self._durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                    ack_wait=self._ack_wait_s, max_ack_pending=self._batch * 8, filter_subject=self._filter,
                ))  # fmt: skip
            inbox = self._nc.new_inbox()
            self._sub = await self._nc.subscribe(inbox, cb=self._collect, pending_msgs_limit=self._batch * 16)
            self._inbox = inbox
        return self._inbox

    async def _collect(self, msg: Msg) -> None:
        status = msg.headers.get(STATUS_HEADER) if msg.headers else None
        if status is None:
            self._received.append(msg)
        elif status != HEARTBEAT:
            self._ends += 1
        self._arrived.set()

    async def _request(self, inbox: str, batch: int, expires_s: float | None = None) -> int:
        """Ask for up to `batch` messages (`expires_s` None: only those there now); return
        the count of ended requests to wait past."""
        ends = self._ends
        request: dict[str, Any] = {"batch": batch}
        request.update({"no_wait": True} if expires_s is None else {"expires": int(expires_s * 1e9)})
        await self._nc.publish(f"{_NEXT}.{self._durable}", orjson.dumps(request), reply=inbox)
        return ends

    async def _wait(self, wanted: int, ends: int, wait_s: float) -> None:
        """Until `wanted` messages are in or the server ended a request, at most `wait_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                while len(self._received) < wanted and self._ends == ends:
                    self._arrived.clear()
                    await self._arrived.wait()

    async def fetch_once(self) -> int:
        """One batch (waiting up to `idle_poll_s` for it): handled and acknowledged. The
        next batch is asked for before this one is handled, so it travels meanwhile."""
        inbox = await self._subscription()
        if self._ahead is not None:
            ends, self._ahead = self._ahead, None
            await self._wait(self._batch, ends, _ANSWER_S)
        elif len(self._received) < self._batch:
            await self._wait(
                self._batch, await self._request(inbox, self._batch - len(self._received)), _ANSWER_S
            )
        if not self._received:
            ends = await self._request(inbox, self._batch, self._idle_poll_s)
            await self._wait(1, ends, self._idle_poll_s + _ANSWER_S)
        msgs, self._received = self._received[: self._batch], self._received[self._batch :]
        if not msgs:
            return 0
        if len(self._received) < self._batch:
            self._ahead = await self._request(inbox, self._batch - len(self._received))
        batch = [
            Incoming(m.headers.get(ID_HEADER, "") if m.headers else "", m.data, m.metadata.num_delivered)
            for m in msgs
        ]  # fmt: skip
        await self._handler(batch)
        for m in msgs:  # each an unawaited publish, flushed together: no task a message
            await m.ack()
        self.handled += len(batch)
        return len(batch)

    async def _reset(self) -> None:
        sub, self._sub, self._inbox, self._received, self._ahead = self._sub, None, None, [], None
        if sub is not None:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def backlog(self, conn: Any) -> tuple[int, str]:
        """Observations waiting for this consumer (`certwatch status`); `conn` is unused."""
        try:
            info = await self._js.consumer_info(STREAM, self._durable, timeout=2)
        except (NatsError, JetStreamError, TimeoutError) as exc:
            return 0, f"JetStream unavailable: {type(exc).__name__}"
        waiting = info.num_pending + info.num_ack_pending
        return waiting, f"{info.num_ack_pending} being handled" if info.num_ack_pending else ""

    async def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if await self.fetch_once():
                    self.progress.advanced()
                else:
                    self.progress.ok()
                failures = 0
                continue
            except (NatsError, JetStreamError) as exc:
                await self._reset()
                self.progress.failed(exc)
                log.warning("observation consumer %s: JetStream unavailable", self._durable,
                            extra={"error": str(exc)})  # fmt: skip
            except Exception as exc:
                self.progress.failed(exc)
                log.exception("observation consumer %s: handler failed", self._durable)
            failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(30.0, 0.25 * 2 ** min(failures, 7)))
