"""The monthly report's arithmetic: a calendar month in a time zone, each domain's status
intervals clipped to it, incidents, time SECURE, status counts per day, expiring certificates.

Pure: rows come in one domain at a time and leave as summaries, so the caller can stream
10,000 domains through `Totals` without holding them. Every figure derives from stored
intervals and the period alone (never from the clock, except to clip the month still
running), so a past month's report is the same whenever it is asked for.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from certwatch.platform.errors import InvalidArgument

SECURE = "SECURE"
ENABLE_FAILED = "ENABLE_FAILED"
EXPIRY_WINDOWS = (30, 60)  # days after the month's end
_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class Period:
    month: str  # "2026-11"
    zone: str
    start: datetime  # first local midnight, aware
    end: datetime  # the next month's first local midnight
    until: datetime  # end, or now while the month runs
    day_starts: tuple[datetime, ...]  # each day's local midnight, then `end`
    bounds: tuple[float, ...]  # the same as POSIX timestamps

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(d.date() for d in self.day_starts[:-1])

    @property
    def complete(self) -> bool:
        return self.until == self.end


def period(month: str, time_zone: str, now: datetime) -> Period:
    """The month as local days in `time_zone` (empty: UTC); refuses months not yet begun."""
    year, number = year_month(month)
    if not year:
        raise InvalidArgument([("month", "must be a month written YYYY-MM, e.g. 2026-11")])
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument([("time_zone", f"{time_zone!r} is not an IANA time zone name")]) from None
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    starts = [datetime(d.year, d.month, d.day, tzinfo=zone) for d in _dates(first, following)]
    start, end = starts[0], starts[-1]
    if start > now:
        raise InvalidArgument([("month", f"{month} has not begun yet")])
    until = min(end, now.astimezone(zone))
    return Period(month, zone.key, start, end, until, tuple(starts), tuple(d.timestamp() for d in starts))


def year_month(month: str) -> tuple[int, int]:
    """(year, month) of a `YYYY-MM` text, (0, 0) when it is not one."""
    found = _MONTH.fullmatch(month)
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1970:
        return 0, 0
    return int(found.group(1)), int(found.group(2))


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Span:
    """A status interval clipped to the period; `open` when it was still running at its end."""

    status: str
    primary_cause: str | None
    causes: tuple[str, ...]
    start: datetime
    end: datetime
    open: bool

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Interval:
    status: str
    primary_cause: str | None
    causes: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Expiry:
    not_after: datetime
    brand: str
    days_left: int  # whole days from the month's end, or now while it runs (negative: expired by then)


@dataclass(frozen=True, slots=True)
class DomainMonth:
    domain_id: str
    host: str
    port: int
    spans: tuple[Span, ...]
    day_status: tuple[str | None, ...]  # the status held longest each day, None: not monitored
    expiry: Expiry | None

    @property
    def monitored_seconds(self) -> float:
        return sum(s.seconds for s in self.spans)

    @property
    def secure_seconds(self) -> float:
        return sum(s.seconds for s in self.spans if s.status == SECURE)

    @property
    def secure_ratio(self) -> float | None:
        return self.secure_seconds / self.monitored_seconds if self.monitored_seconds else None

    @property
    def incidents(self) -> tuple[Span, ...]:
        return tuple(s for s in self.spans if s.status != SECURE)

    @property
    def final_status(self) -> str:
        return self.spans[-1].status if self.spans else ""


def clip(intervals: Sequence[Interval], p: Period) -> tuple[Span, ...]:
    """The month's monitored spans. An ENABLE_FAILED interval is none: the seed's Enable Failed
    is monitoring that "could not be enabled", so it is neither monitored time nor an incident."""
    spans = []
    for i in intervals:
        if i.status == ENABLE_FAILED:
            continue
        start = max(i.started_at, p.start)
        end = min(i.ended_at or p.until, p.until)
        if end > start:
            spans.append(Span(i.status, i.primary_cause, i.causes, start, end,
                              i.ended_at is None or i.ended_at > p.until))  # fmt: skip
    return tuple(spans)


def _day_status(spans: Sequence[Span], p: Period) -> tuple[str | None, ...]:
    """Per day, the status held longest; float timestamps and a bisect to each span's first
    day, because this runs for every domain of a 100,000-domain report."""
    bounds = p.bounds
    days = len(bounds) - 1
    held: list[dict[str, float] | None] = [None] * days
    for s in spans:
        start, end = s.start.timestamp(), s.end.timestamp()
        day = max(0, bisect_right(bounds, start) - 1)
        while day < days and bounds[day] < end:
            overlap = min(end, bounds[day + 1]) - max(start, bounds[day])
            if overlap > 0:
                found = held[day]
                if found is None:
                    found = held[day] = {}
                found[s.status] = found.get(s.status, 0.0) + overlap
            day += 1
    # ties (rare: equal seconds) go to the status that is not SECURE, then by name
    return tuple(max(h, key=lambda st: (h[st], st != SECURE, st)) if h else None for h in held)


def expiry(not_after: datetime | None, brand: str, p: Period) -> Expiry | None:
    if not_after is None:
        return None
    return Expiry(not_after, brand, (not_after - p.until).days)


def summarize(
    domain_id: str, host: str, port: int, intervals: Sequence[Interval], leaf: Expiry | None, p: Period
) -> DomainMonth:
    spans = clip(intervals, p)
    return DomainMonth(domain_id, host, port, spans, _day_status(spans, p), leaf)


@dataclass
class Totals:
    """What the whole account adds up to, folded one domain at a time."""

    days: int
    domains: int = 0
    secure_seconds: float = 0.0
    monitored_seconds: float = 0.0
    incidents: int = 0
    per_day: list[Counter[str]] = field(default_factory=list)
    expiring: dict[int, int] = field(default_factory=lambda: dict.fromkeys(EXPIRY_WINDOWS, 0))

    def __post_init__(self) -> None:
        self.per_day = [Counter() for _ in range(self.days)]

    def add(self, d: DomainMonth) -> None:
        self.domains += 1 if d.spans else 0  # monitored at some time in the month
        self.secure_seconds += d.secure_seconds
        self.monitored_seconds += d.monitored_seconds
        self.incidents += len(d.incidents)
        for counter, status in zip(self.per_day, d.day_status, strict=True):
            if status is not None:
                counter[status] += 1
        window = expiring_within(d)
        for days in EXPIRY_WINDOWS:
            if window is not None and window <= days:
                self.expiring[days] += 1

    @property
    def secure_ratio(self) -> float | None:
        return self.secure_seconds / self.monitored_seconds if self.monitored_seconds else None

    @property
    def statuses(self) -> list[str]:
        """Every status that occurs, SECURE first, for the chart's legend and the CSV."""
        found = {s for c in self.per_day for s in c}
        return sorted(found, key=lambda s: (s != SECURE, s))


def expiring_within(d: DomainMonth) -> int | None:
    """The smallest window (30, 60 days after the month, or after now while it runs) the
    domain's certificate expires in; None when it expires later, or had expired by then (an
    incident already)."""
    if d.expiry is None or d.expiry.days_left < 0:
        return None
    return next((w for w in EXPIRY_WINDOWS if d.expiry.days_left < w), None)


def duration(seconds: float) -> str:
    """`3d 04:05:06`-style, exact to the second: what the incident tables print."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def iso(value: datetime, p: Period) -> str:
    """A local time in the report's zone, to the second."""
    return value.astimezone(ZoneInfo(p.zone)).replace(microsecond=0).isoformat()


def local(value: datetime, p: Period) -> str:
    """A local time in the report's zone for tables (the zone is in the heading)."""
    return value.astimezone(ZoneInfo(p.zone)).strftime("%Y-%m-%d %H:%M:%S")


def short(value: datetime, p: Period) -> str:
    """A local time within the month (or at its end), for the long tables: month-day and time."""
    return value.astimezone(ZoneInfo(p.zone)).strftime("%m-%d %H:%M:%S")


def segments(spans: Sequence[Span], p: Period) -> list[tuple[str | None, float]]:
    """The month as consecutive (status, share of the month) pieces, None where unmonitored:
    the strip each domain's row draws."""
    total = (p.end - p.start).total_seconds()
    out: list[tuple[str | None, float]] = []
    cursor = p.start
    for s in spans:
        if s.start > cursor:
            out.append((None, (s.start - cursor).total_seconds() / total))
        out.append((s.status, s.seconds / total))
        cursor = s.end
    return out
