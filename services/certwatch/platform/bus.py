"""NATS JetStream, configured in code: one file-backed stream of every event, subject per type.

Subjects are `cw.events.<stream category>.<EventType>` (e.g. `cw.events.domain.DomainAdded`),
so a consumer can filter on one category with a wildcard.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from certwatch.platform.events import SUBJECT_ROOT, JsonEvent, RecordedEvent, dumps, subject_filter

log = logging.getLogger(__name__)

STREAM = "CERTWATCH_EVENTS"
POSITION_HEADER = "Cw-Position"
TYPE_HEADER = "Cw-Event-Type"
DUPLICATE_WINDOW_S = 600.0
MAX_AGE_S = 7 * 24 * 3600.0
_NO_PEERS = 10005  # JetStream: "no suitable peers for placement"


def subject_for(event: RecordedEvent | JsonEvent) -> str:
    return f"{SUBJECT_ROOT}.{event.category}.{event.type}"


@dataclass
class Bus:
    nc: NatsClient
    js: JetStreamContext

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()


def servers(url: str) -> list[str]:
    """`CERTWATCH_NATS_URL` may list a cluster's servers, comma-separated: nats-py takes a
    list (a single string with commas would be parsed as one URL), and a client whose server
    dies reconnects to another one of them."""
    found = [part.strip() for part in url.split(",") if part.strip()]
    if not found:
        raise ValueError("CERTWATCH_NATS_URL names no server")
    return found


async def connect(url: str, *, name: str, replicas: int = 1) -> Bus:
    """Connect (retrying forever in the background) and make sure the stream exists."""
    nc = await nats.connect(
        servers(url), name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        connect_timeout=5, allow_reconnect=True, drain_timeout=5,
    )  # fmt: skip
    js = nc.jetstream(timeout=5)
    await ensure_stream(js, replicas=replicas)
    return Bus(nc, js)


async def ensure_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    config = StreamConfig(
        name=STREAM,
        subjects=[subject_filter()],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=MAX_AGE_S,
        num_replicas=replicas,
    )
    if await existing_stream(js, STREAM) is None:
        await add_stream(js, config)
        log.info("created JetStream stream", extra={"stream": STREAM})


async def existing_stream(js: JetStreamContext, name: str, *, within_s: float = 30.0) -> StreamInfo | None:
    """The stream's info, or None when it does not exist. A cluster still forming, or electing
    its meta leader after a node died, leaves the request unanswered (timeout, no responders)
    or answers 503: asked again until `within_s`, since services start beside such a cluster."""
    deadline = asyncio.get_running_loop().time() + within_s
    attempt = 0
    while True:  # bounded by the deadline
        attempt += 1
        try:
            return await js.stream_info(name)
        except NotFoundError:
            return None
        except (NatsTimeoutError, NoRespondersError, ServiceUnavailableError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("JetStream not answering yet; stream %s info asked again", name,
                     extra={"attempt": attempt, "error": repr(exc)})  # fmt: skip
            await asyncio.sleep(0.5)


async def add_stream(js: JetStreamContext, config: StreamConfig, *, within_s: float = 30.0) -> None:
    """Create a stream, waiting while a cluster is still forming: until its servers know each
    other, JetStream answers "no suitable peers for placement" (10005) to a replicated stream,
    or 503 while its meta leader is being elected. Services start beside a new cluster."""
    deadline = asyncio.get_running_loop().time() + within_s
    for attempt in range(1, 1000):
        try:
            await js.add_stream(config)
            return
        except (BadRequestError, ServiceUnavailableError) as exc:
            forming = isinstance(exc, ServiceUnavailableError) or exc.err_code == _NO_PEERS
            if not forming or asyncio.get_running_loop().time() > deadline:
                raise
            log.info("JetStream cluster still forming; stream %s retried", config.name,
                     extra={"attempt": attempt, "error": str(exc)})  # fmt: skip
            await asyncio.sleep(0.5)


def encode_json(event: JsonEvent) -> bytes:
    """`encode` of an event whose data and metadata are JSON text already: they go in as they
    are (`orjson.Fragment`), the same values `encode` writes."""
    return orjson.dumps(_envelope(event, orjson.Fragment(event.data), orjson.Fragment(event.metadata)))


def encode(event: RecordedEvent) -> bytes:
    return dumps(_envelope(event, event.data, event.metadata)).encode()


def _envelope(event: RecordedEvent | JsonEvent, data: object, metadata: object) -> dict[str, object]:
    """The message body both encodings write: one list of fields, so they cannot drift apart."""
    return {
        "position": event.position,
        "event_id": event.event_id,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": data,
        "metadata": metadata,
        "recorded_at": event.recorded_at,
    }
