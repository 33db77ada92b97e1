"""Why a request's bytes are not a valid message, in words a client can act on.

The protobuf runtime only says "Error parsing message" (or "String field had bad UTF-8",
naming no field). On that error path the bytes are walked once more against the message's
descriptor to name the field at fault.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5  # wire types; 3 and 4 (groups) are not proto3


class _Bad(Exception):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(rule)
        self.field = field
        self.rule = rule


def _varint(data: bytes, pos: int, field: str) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise _Bad(field, "truncated or overlong varint")


def _walk(descriptor: Descriptor, data: bytes, prefix: str) -> None:
    pos = 0
    seen: dict[int, int] = {}
    while pos < len(data):
        key, pos = _varint(data, pos, prefix or "request")
        number, wire_type = key >> 3, key & 7
        field = descriptor.fields_by_number.get(number)
        name = f"{prefix}{field.name if field else f'#{number}'}"
        if field is not None and field.is_repeated:
            seen[number] = seen.get(number, -1) + 1
            name = f"{name}[{seen[number]}]"
        if number == 0:
            raise _Bad(prefix or "request", "field number 0 is not valid")
        if wire_type == _VARINT:
            _, pos = _varint(data, pos, name)
        elif wire_type in (_I64, _I32):
            pos += 8 if wire_type == _I64 else 4
            if pos > len(data):
                raise _Bad(name, "truncated fixed-width value")
        elif wire_type == _LEN:
            length, pos = _varint(data, pos, name)
            value = data[pos : pos + length]
            if len(value) < length:
                raise _Bad(name, f"length {length} runs past the end of the message")
            pos += length
            if field is not None and field.type == FieldDescriptor.TYPE_STRING:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Bad(name, f"not valid UTF-8 (byte {exc.start} of the string)") from None
            elif field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                _walk(field.message_type, value, f"{name}.")
        else:
            raise _Bad(name, f"unsupported wire type {wire_type}")


def explain(descriptor: Descriptor, data: bytes) -> tuple[str, str]:
    """(field, rule) for bytes the runtime refused; field is "request" when none is to blame."""
    try:
        _walk(descriptor, data, "")
    except _Bad as bad:
        return bad.field, bad.rule
    return "request", f"not a valid {descriptor.full_name} message"
