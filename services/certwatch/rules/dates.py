"""Timestamps as events and probe facts store them: ISO-8601 in UTC with a ``Z``.

One place for the format, so a verdict and the probe facts it rests on write (and read back)
the same text; an offset-less value read back is taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(value: datetime | None) -> str | None:
    """``2026-01-02T03:04:05Z`` (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(value: Any) -> datetime | None:
    """The datetime of an ISO-8601 text (``Z`` or an offset; none means UTC); ``None`` stays ``None``."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def required(value: Any) -> datetime:
    """Like :func:`parse`, for a timestamp that must be there."""
    parsed = parse(value)
    if parsed is None:
        raise ValueError("missing required timestamp")
    return parsed
