"""The notifier's pure rules: events per verdict change, suppression, quiet hours and digests across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certwatch.notifier import digest
from certwatch.notifier.rules import (
    Backoff,
    DomainRules,
    Drop,
    Event,
    Key,
    Memory,
    QuietHours,
    Send,
    Suppression,
    Verdict,
    decide,
    next_local,
    on_ownership_changed,
    on_service_end,
    on_verdict,
)

RULES = DomainRules()
SECURE = Verdict("SECURE", days_left=80)
NET = Verdict("ABNORMAL", frozenset({"NETWORK_CONNECTION_FAILURE"}))


def run(
    verdicts: list[Verdict], rules: DomainRules = RULES, memory: Memory | None = None
) -> list[list[Event]]:
    memory = memory or Memory()
    out = []
    for v in verdicts:
        memory, events = on_verdict(memory, v, rules)
        out.append(events)
    return out


def test_expiry_by_domain_threshold_fires_once_then_recovers_once() -> None:
    soon = Verdict("SECURE", days_left=40)
    assert run([SECURE, soon, soon]) == [[], [], []]  # 40 days: outside the default 30
    assert run([SECURE, soon, soon], DomainRules(expiry_threshold_days=45)) == [
        [],
        [Event.ABOUT_TO_EXPIRE],
        [],
    ]
    classifier_says = Verdict("ABNORMAL", frozenset({"ABOUT_TO_EXPIRE"}), days_left=20)
    assert run([classifier_says], DomainRules(expiry_threshold_days=7)) == [[]]
    renewed = Verdict("SECURE", days_left=89)
    assert run([SECURE, Verdict("ABNORMAL", frozenset({"ABOUT_TO_EXPIRE"}), 5), renewed]) == [
        [], [Event.ABOUT_TO_EXPIRE], [Event.RECOVERED],
    ]  # fmt: skip


def test_only_an_unexpected_change_alone_is_announced() -> None:
    assert on_ownership_changed(["PUBLIC_KEY"], RULES, alerted_with_it=False)
    assert on_ownership_changed(["SUBJECT", "CHAIN"], RULES, alerted_with_it=False)
    assert not on_ownership_changed(["RENEWAL"], RULES, alerted_with_it=False)
    assert not on_ownership_changed(["ADDRESSES", "CHAIN"], RULES, alerted_with_it=False)
    assert not on_ownership_changed(["PUBLIC_KEY"], RULES, alerted_with_it=True)  # the alert says it
    assert not on_ownership_changed(["ISSUER"], RULES, alerted_with_it=False, renewed_by_hosting=True)
    off = DomainRules(enabled=frozenset(Event) - {Event.CERTIFICATE_CHANGED})
    assert not on_ownership_changed(["ISSUER"], off, alerted_with_it=False)


def test_rules_settings_are_checked_and_round_trip() -> None:
    rules = DomainRules.from_dict(
        {"network_failures": 5, "expiry_threshold_days": 45, "enabled": ["expired"]}
    )
    assert DomainRules.from_dict(rules.to_dict()) == rules
    for bad, field in (
        ({"network_failures": 0}, "network_failures"),
        ({"network_failures": 6}, "network_failures"),
        ({"expiry_threshold_days": 0}, "expiry_threshold_days"),
        ({"enabled": ["nope"]}, "enabled"),
    ):
        with pytest.raises(ValueError, match=field):
            DomainRules.from_dict(bad)
    memory = Memory(frozenset({Event.EXPIRED}), incident=3, network_failures=1)
    assert Memory.from_dict(memory.to_dict()) == memory


def test_expired_mismatch_chain_enable_failed() -> None:
    expired = Verdict("ABNORMAL", frozenset({"EXPIRED"}), days_left=-1)
    both = Verdict("ABNORMAL", frozenset({"CERTIFICATE_MISMATCH", "CHAIN_VALIDATION_FAILED"}), days_left=60)
    assert run([expired, both]) == [[Event.EXPIRED], [Event.CHAIN_FAILED, Event.MISMATCH]]
    assert run([Verdict("ENABLE_FAILED", frozenset({"INVALID_DOMAIN"}))]) == [[Event.ENABLE_FAILED]]


def test_network_failure_only_after_n_consecutive() -> None:
    assert run([SECURE, NET, SECURE, NET, NET, NET, SECURE]) == [
        [], [], [], [], [Event.NETWORK_FAILURE], [], [Event.RECOVERED],
    ]  # fmt: skip
    assert run([NET, NET, NET], DomainRules(network_failures=3)) == [[], [], [Event.NETWORK_FAILURE]]
    assert run([NET], DomainRules(network_failures=1)) == [[Event.NETWORK_FAILURE]]


def test_network_failure_by_the_classifier_streak() -> None:
    """A classifier that appends only changes and counts repeats in `streak`."""
    memory, first = on_verdict(Memory(), NET, RULES, streak=1)
    assert first == []
    memory, second = on_verdict(memory, NET, RULES, streak=2)
    assert second == [Event.NETWORK_FAILURE]
    # A streak seen first at 3 (earlier repeats before this notifier's history) pages at once.
    assert on_verdict(Memory(), NET, DomainRules(network_failures=3), streak=3)[1] == [Event.NETWORK_FAILURE]
    assert on_verdict(Memory(), NET, DomainRules(network_failures=3), streak=2)[1] == []


def test_unreachable_keeps_known_certificate_conditions() -> None:
    soon = Verdict("ABNORMAL", frozenset({"ABOUT_TO_EXPIRE"}), days_left=5)
    assert run([soon, NET, soon]) == [[Event.ABOUT_TO_EXPIRE], [], []]


def test_switched_off_events_are_not_announced() -> None:
    rules = DomainRules(enabled=frozenset(Event) - {Event.RECOVERED})
    assert run([Verdict("ABNORMAL", frozenset({"EXPIRED"})), SECURE], rules) == [[Event.EXPIRED], []]


def test_incident_changes_with_the_conditions() -> None:
    m1, _ = on_verdict(Memory(), Verdict("ABNORMAL", frozenset({"ABOUT_TO_EXPIRE"}), 5), RULES)
    m2, _ = on_verdict(m1, Verdict("ABNORMAL", frozenset({"ABOUT_TO_EXPIRE"}), 4), RULES)
    m3, _ = on_verdict(m2, Verdict("ABNORMAL", frozenset({"EXPIRED"}), -1), RULES)
    m4, _ = on_verdict(m3, SECURE, RULES)
    assert (m1.incident, m2.incident, m3.incident, m4.incident) == (1, 1, 2, 2)


_CAUSES = st.frozensets(st.sampled_from(["EXPIRED", "ABOUT_TO_EXPIRE", "CERTIFICATE_MISMATCH",
                                         "CHAIN_VALIDATION_FAILED", "NETWORK_CONNECTION_FAILURE"]))  # fmt: skip
_VERDICTS = st.builds(
    Verdict,
    st.sampled_from(["SECURE", "ABNORMAL", "ENABLE_FAILED"]),
    _CAUSES,
    st.none() | st.integers(-30, 400),
)


@given(st.lists(_VERDICTS, max_size=30))
def test_each_condition_announced_once_per_onset(verdicts: list[Verdict]) -> None:
    memory = Memory()
    for v in verdicts:
        new, events = on_verdict(memory, v, RULES)
        started = set(new.active - memory.active)
        assert {e for e in events if e != Event.RECOVERED} == started
        assert (Event.RECOVERED in events) == (
            bool(memory.active) and not new.active and v.status == "SECURE"
        )
        assert len(events) == len(set(events))
        memory = new


def test_service_end() -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    assert on_service_end(end, end - timedelta(days=8)) is None
    assert on_service_end(end, end - timedelta(days=7)) is Event.SERVICE_ENDING
    assert on_service_end(end, end) is Event.SERVICE_ENDED


NIGHT = QuietHours(time(22, 0), time(7, 0), "Europe/Berlin")


def test_quiet_hours_defer_mute_drops_ack_stops_reminders() -> None:
    late = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 in Berlin (CEST)
    assert decide(late, 1, Suppression(quiet=NIGHT)) == Send(datetime(2026, 6, 2, 5, 0, tzinfo=UTC))
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert decide(noon, 1, Suppression(quiet=NIGHT)) == Send(noon)
    muted = Suppression(muted_until=noon + timedelta(hours=1))
    assert isinstance(decide(noon, 1, muted), Drop)
    assert decide(noon + timedelta(hours=1), 1, muted) == Send(noon + timedelta(hours=1))
    acked = Suppression(acknowledged_incident=1)
    assert isinstance(decide(noon, 1, acked, reminder=True), Drop)
    assert decide(noon, 1, acked) == Send(noon)  # an onset alert is never a reminder
    assert decide(noon, 2, acked, reminder=True) == Send(noon)  # the incident changed


def test_quiet_hours_across_dst() -> None:
    # Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00 and falls back 2026-10-25 03:00 -> 02:00.
    spring = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 23:00 CET
    assert decide(spring, 1, Suppression(quiet=NIGHT)) == Send(
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    )  # 07:00 CEST
    autumn = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)  # 23:00 CEST
    assert decide(autumn, 1, Suppression(quiet=NIGHT)) == Send(
        datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
    )  # 07:00 CET
    gap = QuietHours(time(1, 0), time(2, 30), "Europe/Berlin")  # ends inside the spring gap
    at = decide(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 1, Suppression(quiet=gap))
    assert at == Send(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 CEST, the first instant after the gap


@given(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    st.times(), st.times(), st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Shanghai",
                                             "Australia/Lord_Howe", "UTC"]),
)  # fmt: skip
def test_deferred_send_is_after_now_outside_quiet_and_within_a_day(
    now: datetime, start: time, end: time, tz: str
) -> None:
    quiet = QuietHours(start, end, tz)
    outcome = decide(now, 1, Suppression(quiet=quiet))
    assert isinstance(outcome, Send)
    if outcome.at != now:
        assert quiet.contains(now) and now < outcome.at <= now + timedelta(hours=26)
        assert not quiet.contains(outcome.at) or start == end


@given(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe"]),
)
def test_one_digest_per_local_day(now: datetime, tz: str) -> None:
    first = digest.next_digest_at(now, tz)
    second = digest.next_digest_at(first, tz)
    assert now < first < second <= first + timedelta(hours=25)
    assert digest.local_day(second, tz) == digest.local_day(first, tz) + timedelta(days=1)
    assert first.astimezone(ZoneInfo(tz)).time() == time(9, 0)


def test_digest_time_on_dst_days() -> None:
    before = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT: New York sprang forward at 02:00 that day
    assert digest.next_digest_at(before, "America/New_York") == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert digest.next_digest_at(datetime(2026, 3, 7, 15, 0, tzinfo=UTC), "America/New_York") == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )  # 09:00 EDT, one hour earlier in UTC than the day before
    assert next_local(datetime(2026, 3, 8, 6, 0, tzinfo=UTC), time(2, 30), "America/New_York") == datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC
    )  # 02:30 doesn't exist that day: 03:30 EDT


def _problem(domain: str, cause: str, days: int | None) -> digest.Problem:
    return digest.Problem(
        f"id-{domain}", domain, 443, cause, cause.replace("_", " ").lower(), "Renew it.", days
    )


def test_three_broken_domains_one_digest_per_contact() -> None:
    problems = [
        _problem("a.example.test", "ABOUT_TO_EXPIRE", 7),
        _problem("b.example.test", "EXPIRED", -2),
        _problem("c.example.test", "ABOUT_TO_EXPIRE", 3),
    ]
    contacts = {"id-a.example.test": ["c1", "c2"], "id-b.example.test": ["c1"], "id-c.example.test": ["c1"]}
    grouped = digest.by_contact(problems, contacts)
    assert sorted(grouped) == ["c1", "c2"]
    assert [p.domain for p in grouped["c1"]] == ["b.example.test", "c.example.test", "a.example.test"]
    msg = digest.compose(grouped["c1"], date(2026, 6, 1))
    assert msg.subject == "certwatch daily digest 2026-06-01: 3 domains need attention"
    assert "- b.example.test:443: expired, expired 2 days ago. Renew it." in msg.text
    assert "- c.example.test:443: about to expire, 3 days left. Renew it." in msg.text
    assert msg.html is not None and msg.html.count("<tr>") == 4
    assert msg.sms == (
        "certwatch: 2 certificates expire within 7 days; 1 certificate has expired. "
        "Details by email and in the console."
    )
    assert digest.digest_key("c1", "email", date(2026, 6, 1)) != digest.digest_key(
        "c1", "email", date(2026, 6, 2)
    )


def test_idempotency_key_separates_every_field() -> None:
    base = Key("expired", "d1", "c1", "email", "3")
    others = [Key("recovered", "d1", "c1", "email", "3"), Key("expired", "d2", "c1", "email", "3"),
              Key("expired", "d1", "c2", "email", "3"), Key("expired", "d1", "c1", "sms", "3"),
              Key("expired", "d1", "c1", "email", "4")]  # fmt: skip
    assert len({base.digest(), *(k.digest() for k in others)}) == 6
    assert base.digest() == Key("expired", "d1", "c1", "email", "3").digest()


@given(st.integers(1, 20), st.floats(0, 10_000))
def test_backoff_grows_to_a_cap_and_honours_hints(attempt: int, hint: float) -> None:
    b = Backoff()
    delay = b.delay(attempt, hint)
    if attempt >= b.max_attempts:
        assert delay is None
    else:
        assert delay is not None and delay >= hint and (delay <= b.cap or delay == hint)
        nxt = b.delay(attempt + 1)
        assert nxt is None or nxt >= b.delay(attempt)  # type: ignore[operator]
    assert [Backoff().delay(n) for n in range(1, 5)] == [30.0, 60.0, 120.0, 240.0]


def test_throttling_waits_the_hint_capped_and_ends_at_the_deadline() -> None:
    b = Backoff()
    assert b.throttled(600.0, waited=0) == 600.0 and b.throttled(0.0, waited=0) == b.throttle_wait
    assert b.throttled(10 * 3600.0, waited=0) == b.cap  # a hint of hours is asked again hourly
    assert b.throttled(600.0, waited=b.throttle_deadline - 600) == 600.0
    assert b.throttled(600.0, waited=b.throttle_deadline - 599) is None
