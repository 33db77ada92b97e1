"""The monthly report's arithmetic: local days across a DST change, the status held longest
each day, incidents clipped to the month, expiry windows, the strip and durations."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.classifier.reports import charts, monthly, monthly_pdf
from certwatch.platform.errors import InvalidArgument

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _interval(status: str, start: datetime, end: datetime | None) -> monthly.Interval:
    cause = None if status == "SECURE" else "NETWORK_CONNECTION_FAILURE"
    return monthly.Interval(status, cause, (cause,) if cause else (), start, end)


def test_local_days_follow_the_zone_across_a_dst_change() -> None:
    p = monthly.period("2026-10", "Europe/Berlin", NOW)
    assert len(p.days) == 31 and p.complete
    assert p.start == datetime(2026, 9, 30, 22, tzinfo=UTC) and p.end == datetime(
        2026, 10, 31, 23, tzinfo=UTC
    )
    lengths = {d: (b - a) for d, a, b in zip(p.days, p.bounds, p.bounds[1:], strict=False)}
    assert lengths[datetime(2026, 10, 25).date()] == 25 * 3600  # clocks go back: a 25-hour day
    assert {v for k, v in lengths.items() if k.day != 25} == {24 * 3600}


def test_the_status_held_longest_each_day_and_incidents_clipped_to_the_month() -> None:
    p = monthly.period("2026-10", "", NOW)
    day = timedelta(days=1)
    intervals = [
        _interval("SECURE", p.start - 5 * day, p.start + day + timedelta(hours=10)),
        _interval("ABNORMAL", p.start + day + timedelta(hours=10), p.start + 3 * day),  # 14 h, then 24 h
        _interval("SECURE", p.start + 3 * day, p.end + 9 * day),
    ]
    d = monthly.summarize("id", "a.example", 443, intervals, None, p)
    assert d.day_status[:4] == ("SECURE", "ABNORMAL", "ABNORMAL", "SECURE")
    assert d.monitored_seconds == 31 * 86400
    [incident] = d.incidents
    assert incident.seconds == 38 * 3600 and not incident.open
    assert monthly.duration(incident.seconds) == "1d 14:00:00"
    assert d.spans[-1].end == p.end and d.spans[-1].open  # it went on after the month: clipped, ongoing
    later = monthly.summarize(
        "id", "a.example", 443, [_interval("SECURE", p.start + 10 * day, None)], None, p
    )
    assert later.day_status[:11] == (None,) * 10 + ("SECURE",) and later.spans[0].open


def test_a_check_that_could_not_enable_monitoring_is_neither_monitored_time_nor_an_incident() -> None:
    """ENABLE_FAILED: monitoring "could not be enabled" (the seed); a domain that never got
    past it in the month is not counted as monitored (trial: 5 of 62 incidents were such)."""
    p = monthly.period("2026-10", "", NOW)
    day = timedelta(days=1)
    failed_then_ok = [_interval("ENABLE_FAILED", p.start, p.start + 2 * day),
                      _interval("SECURE", p.start + 2 * day, None)]  # fmt: skip
    d = monthly.summarize("id", "a.example", 443, failed_then_ok, None, p)
    assert d.incidents == () and d.monitored_seconds == 29 * 86400
    assert d.day_status[:3] == (None, None, "SECURE")
    never = monthly.summarize("id2", "b.example", 443, [_interval("ENABLE_FAILED", p.start, None)], None, p)
    assert never.spans == () and never.incidents == ()
    totals = monthly.Totals(len(p.days))
    for month in (d, never):
        totals.add(month)
    assert (totals.domains, totals.incidents) == (1, 0)


def test_expiry_windows_are_counted_from_the_months_end() -> None:
    p = monthly.period("2026-10", "", NOW)
    spans = [_interval("SECURE", p.start, None)]

    def window(days: float) -> int | None:
        leaf = monthly.expiry(p.end + timedelta(days=days), "CA", p)
        return monthly.expiring_within(monthly.summarize("id", "h", 443, spans, leaf, p))

    assert [window(d) for d in (0.5, 29.9, 30, 59.9, 60, -1)] == [30, 30, 60, 60, None, None]


def test_while_the_month_runs_expiry_windows_are_counted_from_now() -> None:
    """A certificate expiring in five days is news in December's report on 2 December,
    although it expires before the month ends."""
    p = monthly.period("2026-12", "", NOW)
    assert not p.complete
    leaf = monthly.expiry(NOW + timedelta(days=5, hours=1), "CA", p)
    assert leaf is not None and leaf.days_left == 5
    d = monthly.summarize("id", "h", 443, [_interval("SECURE", p.start, None)], leaf, p)
    assert monthly.expiring_within(d) == 30


def test_the_strip_is_one_box_with_overlays() -> None:
    p = monthly.period("2026-10", "", NOW)
    half = p.start + (p.end - p.start) / 2
    spans = monthly.clip([_interval("SECURE", half, None)], p)
    strip = charts.strip(monthly.segments(spans, p))
    assert strip.base == charts.colour("SECURE") and strip.overlays == ((0.0, 50.0, "#fff"),)


@pytest.mark.parametrize(("month", "zone", "field"), [
    ("2026-1", "", "month"), ("2026-00", "", "month"), ("1969-12", "", "month"), ("2027-01", "", "month"),
    ("2026-11", "Nowhere/City", "time_zone"),
])  # fmt: skip
def test_bad_periods_name_their_field(month: str, zone: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        monthly.period(month, zone, NOW)
    assert info.value.violations[0][0] == field


def _domains(n: int, p: monthly.Period) -> Iterator[monthly.DomainMonth]:
    for k in range(n):
        start = p.start + timedelta(hours=k % 700)
        intervals = [_interval("SECURE", p.start, start), _interval("ABNORMAL", start, start + timedelta(hours=1)),
                     _interval("SECURE", start + timedelta(hours=1), None)]  # fmt: skip
        leaf = monthly.expiry(p.end + timedelta(days=k % 90), "CA", p)
        yield monthly.summarize(f"id{k}", f"site{k}.example", 443, intervals, leaf, p)


def test_the_monthly_pdfs_first_page_is_folded_from_every_domain_keeping_none() -> None:
    """10,000 domains folded in one at a time: the totals count every one, the expiry
    timeline keeps at most 16 dots a day (with each day's count), and no row stays alive."""
    p = monthly.period("2026-10", "", NOW)
    head = monthly_pdf.Head(p)
    for d in _domains(10_000, p):
        head.add_domain(d)
    gc.collect()
    alive = sum(1 for o in gc.get_objects() if isinstance(o, monthly.DomainMonth))
    assert head.totals.domains == head.totals.incidents == 10_000 and alive <= 1  # the loop variable
    expiring = [d for d in _domains(10_000, p) if monthly.expiring_within(d) is not None]
    chart = head.timeline.chart()
    assert len(chart.bars) == 60 * 16 and chart.top == max(
        Counter(d.expiry.days_left for d in expiring if d.expiry).values()
    )
    first = sorted(f"{d.host}:443" for d in expiring if d.expiry and d.expiry.days_left == 0)[:16]
    assert [b.title for b in chart.bars[:16]] == first
