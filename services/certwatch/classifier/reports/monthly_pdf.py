"""The monthly report as a PDF: the summary, the two charts and the long tables (expiring
certificates, domains with their strips, incidents, renewals, alerts) as blocks of lines.

Bounded: rows are folded in one at a time (`Month.add_*`); totals count every row, while
each table keeps at most `TABLE_ROWS` (the domains with the least time SECURE, the soonest
expiries, the month's first renewals and alerts) and says how many more the CSV lists. So
the layout, WeasyPrint's whole cost in time and memory, is the same for 10,000 domains as
for 1,000.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

from certwatch.classifier.reports import activity, charts, monthly, render
from certwatch.classifier.reports.blocks import Field, line

TABLE_ROWS = 1_000
TABLES = SimpleNamespace(
    expiring=(Field("Days after", 10, right=True), Field("Expires", 19), Field("Brand", 24), Field("Domain", 0)),
    domains=(Field("At the end", 13), Field("Time SECURE", 12, right=True), Field("Incidents", 9, right=True),
             Field("Domain", 0)),
    incidents=(Field("Start", 14), Field("End", 14), Field("Duration", 11, right=True), Field("Status", 13),
               Field("Domain", 26), Field("Causes", 0)),
    renewals=(Field("Time", 14), Field("Outcome", 7), Field("New certificate until", 21),
              Field("Issuer or failure", 30), Field("Names", 0)),
    alerts=(Field("Time", 14), Field("Outcome", 7), Field("Event", 19), Field("Channel", 8), Field("Domain", 24),
            Field("Contact", 0)),
)  # fmt: skip


def percent(ratio: float | None) -> str:
    return "no monitoring" if ratio is None else f"{100 * ratio:.2f}%"


def _name(d: monthly.DomainMonth) -> str:
    return f"{d.host}:{d.port}"


@dataclass
class Month:
    """What the PDF shows, folded in row by row with at most `limit` rows a table."""

    p: monthly.Period
    limit: int = TABLE_ROWS
    totals: monthly.Totals = field(init=False)
    seen: int = 0  # tie-breaker: keeps heap entries comparable and the order stable
    worst: list[tuple[float, int, monthly.DomainMonth]] = field(default_factory=list)
    soonest: list[tuple[float, int, monthly.DomainMonth]] = field(default_factory=list)
    renewals: list[activity.Renewal] = field(default_factory=list)
    renewals_total: int = 0
    alerts: list[activity.Alert] = field(default_factory=list)
    alerts_sent: int = 0
    alerts_failed: int = 0

    def __post_init__(self) -> None:
        self.totals = monthly.Totals(len(self.p.days))

    def _keep(
        self, heap: list[tuple[float, int, monthly.DomainMonth]], rank: float, d: monthly.DomainMonth
    ) -> None:
        """Keep the `limit` smallest ranks (a max-heap by negated rank)."""
        self.seen += 1
        entry = (-rank, -self.seen, d)
        if len(heap) < self.limit:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)

    def add_domain(self, d: monthly.DomainMonth) -> None:
        self.totals.add(d)
        ratio = d.secure_ratio
        self._keep(self.worst, 2.0 if ratio is None else ratio, d)
        if monthly.expiring_within(d) is not None and d.expiry:
            self._keep(self.soonest, d.expiry.not_after.timestamp(), d)

    def add_renewal(self, r: activity.Renewal) -> None:
        self.renewals_total += 1
        if len(self.renewals) < self.limit:
            self.renewals.append(r)

    def add_alert(self, a: activity.Alert) -> None:
        if a.sent:
            self.alerts_sent += 1
        else:
            self.alerts_failed += 1
        if len(self.alerts) < self.limit:
            self.alerts.append(a)

    @property
    def domains(self) -> list[monthly.DomainMonth]:
        """The kept domains in the report's order (host, port, id)."""
        return sorted((d for _, _, d in self.worst), key=lambda d: (d.host, d.port, d.domain_id))

    @property
    def expiring(self) -> list[monthly.DomainMonth]:
        return sorted((d for _, _, d in self.soonest),
                      key=lambda d: (d.expiry.not_after if d.expiry else self.p.end, d.host))  # fmt: skip


def _expiring(m: Month) -> Iterator[tuple[object, str]]:
    for d in m.expiring:
        if d.expiry:
            yield None, line(TABLES.expiring, (str(d.expiry.days_left), monthly.local(d.expiry.not_after, m.p),
                                               d.expiry.brand, _name(d)))  # fmt: skip


def _domains(found: list[monthly.DomainMonth], p: monthly.Period) -> Iterator[tuple[object, str]]:
    for d in found:
        yield (
            charts.strip(monthly.segments(d.spans, p)),
            line(TABLES.domains, (d.final_status, percent(d.secure_ratio), str(len(d.incidents)), _name(d))),
        )


def _incidents(found: list[monthly.DomainMonth], m: Month) -> Iterator[tuple[object, str]]:
    shown = 0
    for d in found:
        for s in d.incidents:
            if shown == m.limit:
                return
            shown += 1
            end = "ongoing" if s.open else monthly.short(s.end, m.p)
            yield None, line(TABLES.incidents, (monthly.short(s.start, m.p), end, monthly.duration(s.seconds),
                                                s.status, _name(d), ", ".join(s.causes)))  # fmt: skip


def _renewals(m: Month) -> Iterator[tuple[object, str]]:
    for r in m.renewals:
        until = monthly.local(r.not_after, m.p) if r.not_after else ""
        yield None, line(TABLES.renewals, (monthly.short(r.at, m.p), "renewed" if r.renewed else "failed",
                                           until, r.issuer if r.renewed else r.detail, activity.names(r)))  # fmt: skip


def _alerts(m: Month) -> Iterator[tuple[object, str]]:
    for a in m.alerts:
        yield None, line(TABLES.alerts, (monthly.short(a.at, m.p), "sent" if a.sent else "failed", a.event,
                                         a.channel, activity.domain_name(a.host, a.port, a.domain_id),
                                         a.contact_id))  # fmt: skip


def document(account: str, m: Month) -> bytes:
    p, totals = m.p, m.totals
    found, expiring = m.domains, m.expiring
    timeline = [(d.expiry.days_left, _name(d)) for d in expiring if d.expiry]
    shown_incidents = min(m.limit, sum(len(d.incidents) for d in found))
    html = render.html(
        "monthly.html", p=p, account=account, totals=totals, tables=TABLES, m=m, limit=m.limit,
        more_domains=totals.domains - len(found), more_incidents=totals.incidents - shown_incidents,
        more_expiring=totals.expiring[60] - len(expiring),
        more_renewals=m.renewals_total - len(m.renewals),
        more_alerts=m.alerts_sent + m.alerts_failed - len(m.alerts),
        day_chart=charts.status_per_day(p.days, totals.per_day, totals.statuses),
        expiry_chart=charts.expiry_timeline(timeline, monthly.EXPIRY_WINDOWS[-1]),
        expiring_rows=_expiring(m), domain_rows=_domains(found, p), incident_rows=_incidents(found, m),
        renewal_rows=_renewals(m), alert_rows=_alerts(m),
        created=render.stamp(p.until), iso=lambda value: monthly.local(value, p), percent=percent,
    )  # fmt: skip
    return render.pdf(html)
