"""`google.protobuf.Timestamp` from what handlers hold: one conversion for every service.

A date is its midnight in UTC (the quota's service end); text is ISO-8601 as events store
it (`Z` or an offset; none means UTC); a naive datetime is UTC; None is no timestamp.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(value: datetime | date | str | None) -> Timestamp | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo is None else value.astimezone(UTC))
    return stamp
