"""Events: immutable facts with a schema version, and the upcasters that read old ones."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import orjson

JsonDict = dict[str, Any]

# Bus subjects are `cw.events.<stream category>.<EventType>` (e.g. `cw.events.domain.DomainAdded`).
SUBJECT_ROOT = "cw.events"


def subject_filter(category: str | None = None) -> str:
    """The subject filter for every event of one stream category (or of all of them)."""
    return f"{SUBJECT_ROOT}.{category}.>" if category else f"{SUBJECT_ROOT}.>"


def _json_default(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: object) -> str:
    """Compact JSON; orjson, because encoding events is on every hot path (a few times
    faster than the standard library, with UUIDs and datetimes built in)."""
    return orjson.dumps(value, default=_json_default).decode()


def stable_id(*parts: object) -> uuid.UUID:
    """A deterministic event id for an event caused by another: redelivery appends nothing new."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "certwatch:" + ":".join(str(p) for p in parts))


def _random_ids() -> tuple[Callable[[], uuid.UUID], Callable[[], None]]:
    """Random (version 4) UUIDs from a buffer of OS randomness refilled 4 KiB at a time.

    `uuid.uuid4()` makes a syscall and validates its argument for every id (2.1 µs here, most
    of the cost of building a batch of events; this takes under 1 µs). Same randomness, same
    format. Everything it touches is bound in the closure, for speed.
    """
    state: list[Any] = [b"", 0]  # buffer, offset of the next unused byte
    urandom, new, put, from_bytes = os.urandom, object.__new__, object.__setattr__, int.from_bytes
    made_type, unknown = uuid.UUID, uuid.SafeUUID.unknown
    mask, bits = ~((0xC000 << 48) | (0xF000 << 64)), (0x8000 << 48) | (4 << 76)

    def make() -> uuid.UUID:
        buffer, at = state
        if at >= len(buffer):
            buffer = state[0] = urandom(4096)
            at = 0
        state[1] = at + 16
        made = new(made_type)
        put(made, "int", (from_bytes(buffer[at : at + 16]) & mask) | bits)
        put(made, "is_safe", unknown)
        return made

    def forget() -> None:
        state[:] = [b"", 0]

    return make, forget


new_event_id, _forget_random = _random_ids()
os.register_at_fork(after_in_child=_forget_random)  # a child must never hand out its parent's ids


class _NewEventFields(NamedTuple):
    type: str
    data: Mapping[str, Any]
    event_id: uuid.UUID
    schema_version: int
    metadata: Mapping[str, Any]


class NewEvent(_NewEventFields):
    """An event about to be appended. Past-tense `type`, e.g. `MonitoringEnabled`.

    A named tuple (immutable) with a constructor of its own: a batch of probe results builds
    hundreds per append, and a frozen dataclass spends about 1.3 µs an event in `__init__`.
    """

    __slots__ = ()

    def __new__(
        cls,
        type: str,
        data: Mapping[str, Any],
        event_id: uuid.UUID | None = None,
        schema_version: int = 1,
        metadata: Mapping[str, Any] | None = None,
    ) -> NewEvent:
        return tuple.__new__(cls, (type, data, new_event_id() if event_id is None else event_id,
                                   schema_version, {} if metadata is None else metadata))  # fmt: skip

    def as_json(self) -> JsonDict:
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
        }


class RecordedEvent(NamedTuple):
    """An event as stored. A named tuple: a replay builds one per row, and a tuple is built
    from the row in one step (a frozen dataclass costs about 1.5 µs an event in `__init__`)."""

    position: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    data: JsonDict
    metadata: JsonDict
    recorded_at: datetime
    transaction_id: int = 0

    @property
    def cursor(self) -> tuple[int, int]:
        """This event's place in global order: (transaction id, position)."""
        return (self.transaction_id, self.position)

    @property
    def category(self) -> str:
        """The stream's kind, the part before the first '-' (`domain-<id>` -> `domain`)."""
        return self.stream_id.split("-", 1)[0]


class JsonEvent(NamedTuple):
    """A recorded event whose data and metadata are the JSON text the log holds, for a reader
    that passes them on unread (the outbox relay): decoding them into dicts and encoding them
    again was a quarter of the relay's reading, for nothing. The event id is its text too;
    `traceparent` is the metadata's."""

    position: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    data: str
    metadata: str
    recorded_at: datetime
    transaction_id: int
    traceparent: str | None

    @property
    def category(self) -> str:
        return self.stream_id.split("-", 1)[0]


Upcaster = Callable[[JsonDict], JsonDict]


class Upcasters:
    """Per (event type, schema version) functions that lift old payloads to the current shape.

    Events are never rewritten in the log; readers upcast as they read.
    """

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}
        self.types: set[str] = set()  # the types that have a step: readers skip the rest

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def decorator(fn: Upcaster) -> Upcaster:
            self._steps[(event_type, from_version)] = fn
            self.types.add(event_type)
            return fn

        return decorator

    def upcast(self, event: RecordedEvent) -> RecordedEvent:
        version, data = event.schema_version, event.data
        while (step := self._steps.get((event.type, version))) is not None:
            data, version = step(data), version + 1
        if version == event.schema_version:
            return event
        return event._replace(schema_version=version, data=data)


UPCASTERS = Upcasters()


def parse_metadata(raw: Mapping[str, Any] | str | None) -> JsonDict:
    if raw is None:
        return {}
    if isinstance(raw, str):
        parsed: JsonDict = orjson.loads(raw)
        return parsed
    return dict(raw)
