"""Facts about an account as a whole, on `account-<account id>` streams.

The account's time zone is one fact for every service: the notifier (digest time, quiet
hours) appends it when the account's rules set it and keeps a copy in its own table; the
reports read it from here (a month's report uses the zone in effect when the month began
anywhere on Earth, so a later change never alters a month already begun).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from certwatch.contracts.payload import Category, Payload

STREAM = Category("account")
stream_id = STREAM.stream_id
EARLIEST_OFFSET = timedelta(hours=14)  # UTC+14 (Line Islands): where a day begins first


class AccountTimeZoneSet(Payload, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "AccountTimeZoneSet"
    account_id: str
    time_zone: str  # an IANA name
    at: datetime


def valid_zone(name: str) -> bool:
    """An IANA time zone name the standard library knows (what every reader will load)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(name)


def month_began(year: int, month: int) -> datetime:
    """The first instant any place on Earth was in the month: the zone fact as of then is the
    month's."""
    return datetime(year, month, 1, tzinfo=UTC) - EARLIEST_OFFSET
