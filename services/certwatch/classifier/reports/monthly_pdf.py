"""The monthly report as a PDF: the summary, the two charts and the long tables (expiring
certificates, domains with their strips, incidents, renewals, alerts), every row of them.

Bounded: a first pass folds what the first page shows (`Head`: totals, the expiry timeline,
counts); then the tables' rows stream in from their sources, `chunk` rows laid out as one
WeasyPrint document at a time, painted into the PDF and dropped (render.Pages); the footers
(page n of N) are painted over last, when N is known. Memory is one chunk's layout however
many domains the account has; the PDF's bytes grow with its pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from certwatch.classifier.reports import activity, charts, monthly, render
from certwatch.classifier.reports.blocks import ROWS_PER_BLOCK, Field, line

CHUNK_ROWS = 20 * ROWS_PER_BLOCK  # ~10 pages laid out at a time (~1 MB a page until painted)
FOOTER_PAGES = 200  # footers laid out at a time

Row = tuple[object, str]  # (the row's strip or None, its line)


@dataclass(frozen=True, slots=True)
class Section:
    title: str  # its heading; "" when it continues the one above (the expiring certificates)
    fields: tuple[Field, ...]
    empty: str = ""  # what is said when it has no row
    kind: str = ""
    strips: bool = False


# fmt: off
EXPIRING = Section("", (Field("Days after", 10, right=True), Field("Expires", 19), Field("Brand", 24),
                        Field("Domain", 0)), "No certificate expires within 60 days of the month's end.")
DOMAINS = Section("Domains", (Field("At the end", 13), Field("Time SECURE", 12, right=True),
                              Field("Incidents", 9, right=True), Field("Domain", 0)), strips=True)
INCIDENTS = Section("Incidents", (Field("Start", 14), Field("End", 14), Field("Duration", 11, right=True),
                                  Field("Status", 13), Field("Domain", 26), Field("Causes", 0)),
                    "No incident this month.", "small")
RENEWALS = Section("Renewals by hosting", (Field("Time", 14), Field("Outcome", 7), Field("New certificate until", 21),
                                           Field("Issuer or failure", 30), Field("Names", 0)),
                   "Hosting renewed no certificate this month.", "small")
ALERTS = Section("Alerts Sent", (Field("Time", 14), Field("Outcome", 7), Field("Event", 19), Field("Channel", 8),
                                 Field("Domain", 24), Field("Contact", 0)), "No alert was sent this month.", "small")
# fmt: on


def percent(ratio: float | None) -> str:
    return "no monitoring" if ratio is None else f"{100 * ratio:.2f}%"


def _name(d: monthly.DomainMonth) -> str:
    return f"{d.host}:{d.port}"


@dataclass
class Sources:
    """Each table's rows, read afresh for each pass (inside one snapshot): the account's
    domains in host order, those expiring within 60 days by expiry, renewals and alerts by time."""

    domains: Callable[[], AsyncIterator[monthly.DomainMonth]]
    expiring: Callable[[], AsyncIterator[monthly.DomainMonth]]
    renewals: Callable[[], AsyncIterator[activity.Renewal]]
    alerts: Callable[[], AsyncIterator[activity.Alert]]


@dataclass
class Head:
    """What the first page shows, folded from every row, keeping none."""

    p: monthly.Period
    totals: monthly.Totals = field(init=False)
    timeline: charts.Timeline = field(default_factory=lambda: charts.Timeline(monthly.EXPIRY_WINDOWS[-1]))
    renewals: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0

    def __post_init__(self) -> None:
        self.totals = monthly.Totals(len(self.p.days))

    def add_domain(self, d: monthly.DomainMonth) -> None:
        self.totals.add(d)
        if monthly.expiring_within(d) is not None and d.expiry:
            self.timeline.add(d.expiry.days_left, _name(d))

    def add_alert(self, a: activity.Alert) -> None:
        if a.sent:
            self.alerts_sent += 1
        else:
            self.alerts_failed += 1

    async def fold(self, sources: Sources) -> None:
        async for d in sources.domains():
            self.add_domain(d)
        async for _ in sources.renewals():
            self.renewals += 1
        async for a in sources.alerts():
            self.add_alert(a)


def _expiring(d: monthly.DomainMonth, p: monthly.Period) -> Iterator[Row]:
    if d.expiry and monthly.expiring_within(d) is not None:
        yield None, line(EXPIRING.fields, (str(d.expiry.days_left), monthly.local(d.expiry.not_after, p),
                                           d.expiry.brand, _name(d)))  # fmt: skip


def _domain(d: monthly.DomainMonth, p: monthly.Period) -> Iterator[Row]:
    yield (
        charts.strip(monthly.segments(d.spans, p)),
        line(DOMAINS.fields, (d.final_status, percent(d.secure_ratio), str(len(d.incidents)), _name(d))),
    )


def _incidents(d: monthly.DomainMonth, p: monthly.Period) -> Iterator[Row]:
    for s in d.incidents:
        end = "ongoing" if s.open else monthly.short(s.end, p)
        yield None, line(INCIDENTS.fields, (monthly.short(s.start, p), end, monthly.duration(s.seconds),
                                            s.status, _name(d), ", ".join(s.causes)))  # fmt: skip


def _renewal(r: activity.Renewal, p: monthly.Period) -> Iterator[Row]:
    until = monthly.local(r.not_after, p) if r.not_after else ""
    yield None, line(RENEWALS.fields, (monthly.short(r.at, p), "renewed" if r.renewed else "failed",
                                       until, r.issuer if r.renewed else r.detail, activity.names(r)))  # fmt: skip


def _alert(a: activity.Alert, p: monthly.Period) -> Iterator[Row]:
    yield None, line(ALERTS.fields, (monthly.short(a.at, p), "sent" if a.sent else "failed", a.event,
                                     a.channel, activity.domain_name(a.host, a.port, a.domain_id),
                                     a.contact_id))  # fmt: skip


async def _rows(sources: Sources, p: monthly.Period) -> AsyncIterator[tuple[Section, Row | None]]:
    """Every table's rows in the report's order, each table opened by (section, None)."""
    tables: tuple[
        tuple[Section, Callable[[], AsyncIterator[Any]], Callable[[Any, monthly.Period], Iterator[Row]]], ...
    ]
    tables = ((EXPIRING, sources.expiring, _expiring), (DOMAINS, sources.domains, _domain),
              (INCIDENTS, sources.domains, _incidents), (RENEWALS, sources.renewals, _renewal),
              (ALERTS, sources.alerts, _alert))  # fmt: skip
    for section, source, rows in tables:
        yield section, None
        async for item in source():
            for row in rows(item, p):
                yield section, row


@dataclass
class _Part:
    """A section's rows in one chunk; `opens` when its heading (or empty note) is there."""

    section: Section
    opens: bool
    rows: list[Row] = field(default_factory=list)


async def _chunks(sources: Sources, p: monthly.Period, size: int) -> AsyncIterator[list[_Part]]:
    parts: list[_Part] = []
    count = 0
    async for section, row in _rows(sources, p):
        if row is None:
            parts.append(_Part(section, opens=True))
            continue
        if count == size:
            yield parts
            parts, count = [_Part(section, opens=False)], 0
        parts[-1].rows.append(row)
        count += 1
    yield parts


def _footers(p: monthly.Period, pages: int, first: int) -> str:
    count = min(FOOTER_PAGES, pages - first)
    return render.html("footer.html", title=f"Monthly report {p.month}", pages=pages, first=first + 1,
                       count=count, created=render.stamp(p.until))  # fmt: skip


async def document(account: str, p: monthly.Period, sources: Sources, chunk: int = CHUNK_ROWS) -> bytes:
    """The PDF, its rows read from `sources` and laid out `chunk` rows at a time."""
    head = Head(p)
    await head.fold(sources)
    totals = head.totals
    out = render.Pages()
    context = {"p": p, "account": account, "created": render.stamp(p.until), "percent": percent,
               "iso": lambda value: monthly.local(value, p)}  # fmt: skip
    charts_ = {"day_chart": charts.status_per_day(p.days, totals.per_day, totals.statuses),
               "expiry_chart": head.timeline.chart()}  # fmt: skip
    first = True
    async for parts in _chunks(sources, p, chunk):
        html = render.html("monthly.html", **context, **charts_, head=head if first else None, parts=parts)
        await asyncio.to_thread(out.add, html)
        first = False
    for start in range(0, len(out), FOOTER_PAGES):
        await asyncio.to_thread(out.overlay, _footers(p, len(out), start), start)
    return await asyncio.to_thread(out.finish)
