"""Naming the field at fault in bytes the protobuf runtime refused."""

from __future__ import annotations

import pytest

from certwatch.platform.wire import explain
from certwatch.v1 import inventory_pb2 as pb


def _len(field: int, value: bytes) -> bytes:
    return bytes([field << 3 | 2, len(value)]) + value


@pytest.mark.parametrize(
    ("message", "data", "field", "rule"),
    [
        (pb.CreateAccountRequest, _len(1, b"\xff\xfe"), "name", "not valid UTF-8 (byte 0"),
        (
            pb.UpdateContactRequest,
            _len(1, b"id") + _len(2, _len(3, b"a\xc3\x28")),
            "contact.email",
            "UTF-8 (byte 1",
        ),
        (pb.EditDomainRequest, _len(3, b"ok") + _len(3, b"\x80"), "contact_ids[1]", "not valid UTF-8"),
        (pb.CreateAccountRequest, b"\x0a\x10abc", "name", "length 16 runs past the end"),
        (pb.CreateAccountRequest, b"\x10\xff\xff", "admin", "truncated or overlong varint"),
        (pb.CreateAccountRequest, b"\x0b", "name", "unsupported wire type 3"),
        (pb.CreateAccountRequest, b"\x00\x00", "request", "field number 0"),
    ],
)
def test_the_field_and_the_rule_are_named(message: type, data: bytes, field: str, rule: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the runtime's own DecodeError
        message.FromString(data)
    named, why = explain(message.DESCRIPTOR, data)
    assert named == field and rule in why, (named, why)
