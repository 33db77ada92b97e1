"""The monthly report as a PDF: the summary, the two charts and the three long tables
(expiring certificates, domains with their strips, incidents) as blocks of lines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import SimpleNamespace

from certwatch.classifier.reports import charts, monthly, pending, render
from certwatch.classifier.reports.blocks import Field, line

TABLES = SimpleNamespace(
    expiring=(Field("Days after", 10, right=True), Field("Expires", 19), Field("Brand", 24), Field("Domain", 0)),
    domains=(Field("At the end", 13), Field("Time SECURE", 12, right=True), Field("Incidents", 9, right=True),
             Field("Domain", 0)),
    incidents=(Field("Start", 19), Field("End", 19), Field("Duration", 11, right=True), Field("Status", 13),
               Field("Domain", 32), Field("Causes", 0)),
)  # fmt: skip


def percent(ratio: float | None) -> str:
    return "no monitoring" if ratio is None else f"{100 * ratio:.2f}%"


def _name(d: monthly.DomainMonth) -> str:
    return f"{d.host}:{d.port}"


def _expiring(found: Sequence[monthly.DomainMonth], p: monthly.Period) -> Iterator[tuple[object, str]]:
    for d in found:
        if d.expiry:
            yield None, line(TABLES.expiring, (str(d.expiry.days_left), monthly.local(d.expiry.not_after, p),
                                               d.expiry.brand, _name(d)))  # fmt: skip


def _domains(found: Sequence[monthly.DomainMonth], p: monthly.Period) -> Iterator[tuple[object, str]]:
    for d in found:
        yield (
            charts.strip(monthly.segments(d.spans, p)),
            line(TABLES.domains, (d.final_status, percent(d.secure_ratio), str(len(d.incidents)), _name(d))),
        )


def _incidents(found: Sequence[monthly.DomainMonth], p: monthly.Period) -> Iterator[tuple[object, str]]:
    for d in found:
        for s in d.incidents:
            end = "ongoing" if s.open else monthly.local(s.end, p)
            yield None, line(TABLES.incidents, (monthly.local(s.start, p), end, monthly.duration(s.seconds),
                                                s.status, _name(d), ", ".join(s.causes)))  # fmt: skip


def document(account: str, found: Sequence[monthly.DomainMonth], p: monthly.Period) -> bytes:
    totals = monthly.Totals(len(p.days))
    for d in found:
        totals.add(d)
    expiring = sorted((d for d in found if monthly.expiring_within(d) is not None),
                      key=lambda d: (d.expiry.not_after if d.expiry else p.end, d.host))  # fmt: skip
    timeline = [(d.expiry.days_left, _name(d)) for d in expiring if d.expiry]
    html = render.html(
        "monthly.html", p=p, account=account, totals=totals, tables=TABLES, expiring=bool(expiring),
        day_chart=charts.status_per_day(p.days, totals.per_day, totals.statuses),
        expiry_chart=charts.expiry_timeline(timeline, monthly.EXPIRY_WINDOWS[-1]),
        expiring_rows=_expiring(expiring, p), domain_rows=_domains(found, p), incident_rows=_incidents(found, p),
        created=render.stamp(p.until), iso=lambda value: monthly.local(value, p), percent=percent,
        renewals_note=pending.HOSTING_RENEWALS, alerts_note=pending.ALERTS_SENT,
    )  # fmt: skip
    return render.pdf(html)
