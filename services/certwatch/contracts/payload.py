"""The base of every event payload: a frozen msgspec struct named by its event type.

A payload decodes from what the event log hands over (the stored JSON, already upcast to
the current schema version) and validates on the way: a missing field, a wrong type or an
unknown status fails at the reader's door with the field named, not three calls later as a
``KeyError``. Fields added after events were first written have defaults, so older events
still decode; a shape change is a new schema version with its upcaster (see ``domain``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from uuid import UUID

import msgspec

from certwatch.platform.events import NewEvent, RecordedEvent, subject_filter

_BY_TYPE: dict[str, type[Payload]] = {}


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """One event's data. Subclasses set ``TYPE`` (the event type) and ``VERSION``."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            _BY_TYPE[cls.TYPE] = cls

    @classmethod
    def of(cls, event: RecordedEvent) -> Self:
        """This event's payload, typed and validated (the event must be of this type)."""
        if event.type != cls.TYPE:
            raise ValueError(f"a {event.type} event is not a {cls.TYPE}")
        return cls.from_data(event.data)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """A payload kept as JSON elsewhere (a projection's copy of the event's data)."""
        return msgspec.convert(data, cls)

    def to_data(self) -> dict[str, Any]:
        """The JSON form the log stores (timestamps ISO-8601 in UTC)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def new_event(
        self, *, event_id: UUID | None = None, metadata: Mapping[str, Any] | None = None
    ) -> NewEvent:
        """The event to append, at this payload's schema version."""
        return NewEvent(self.TYPE, self.to_data(), event_id, self.VERSION, metadata)


def decode(event: RecordedEvent) -> Payload:
    """The typed payload of any event a contract defines (``KeyError`` for other types)."""
    return _BY_TYPE[event.type].of(event)


def payload_type(event_type: str) -> type[Payload]:
    return _BY_TYPE[event_type]


@dataclass(frozen=True, slots=True)
class Category:
    """A kind of stream: its ids are ``<name>-<id>``, its bus subjects ``cw.events.<name>.*``."""

    name: str

    def stream_id(self, entity_id: UUID | str) -> str:
        return f"{self.name}-{entity_id}"

    @property
    def subject(self) -> str:
        """The subject filter a consumer of this category's events subscribes with."""
        return subject_filter(self.name)
