"""Event ids and new events: the fast constructors must keep what uuid4() and a frozen
dataclass guaranteed."""

from __future__ import annotations

import os
import uuid

import pytest

from certwatch.platform.events import NewEvent, new_event_id


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(5000)]  # more than one 4 KiB refill
    assert len(set(ids)) == len(ids)
    for made in ids[:300]:
        assert made.version == 4 and made.variant == uuid.RFC_4122
        assert uuid.UUID(str(made)) == made and hash(uuid.UUID(made.hex)) == hash(made)
    # every bit outside the version and variant fields varies over a few thousand ids
    fixed = (0xF000 << 64) | (0xC000 << 48)
    seen_ones = seen_zeros = 0
    for made in ids:
        seen_ones |= made.int
        seen_zeros |= ~made.int
    assert (seen_ones & seen_zeros) & ((1 << 128) - 1) == ((1 << 128) - 1) & ~fixed


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    new_event_id()  # the parent holds a partly used buffer
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, b"".join(new_event_id().bytes for _ in range(8)))
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child = os.read(read_end, 16 * 8)
    os.close(read_end)
    parent = b"".join(new_event_id().bytes for _ in range(8))
    assert len(child) == 16 * 8 and child != parent
    assert not {child[i : i + 16] for i in range(0, len(child), 16)} & {
        parent[i : i + 16] for i in range(0, len(parent), 16)
    }


def test_new_events_are_immutable_with_fresh_defaults() -> None:
    a, b = NewEvent("Tested", {"n": 1}), NewEvent("Tested", {"n": 1})
    assert a.event_id != b.event_id and a.schema_version == 1
    assert a.metadata == {} and a.metadata is not b.metadata
    with pytest.raises(AttributeError):
        a.type = "Other"  # type: ignore[misc]
    given = uuid.uuid4()
    c = NewEvent("Tested", {}, event_id=given, schema_version=2, metadata={"k": "v"})
    assert (c.event_id, c.schema_version, c.metadata) == (given, 2, {"k": "v"})
    assert c.as_json() == {"event_id": str(given), "type": "Tested", "schema_version": 2, "data": {},
                           "metadata": {"k": "v"}}  # fmt: skip
