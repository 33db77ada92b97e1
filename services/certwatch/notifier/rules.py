"""Which notifications a verdict change fires, and whether one goes now: pure functions over plain data.

The notifier keeps a small `Memory` per domain; `on_verdict` folds each new verdict into it and
names the events to announce. An event fires when its condition starts (an immediate alert) and a
recovery fires when every alerting condition has ended; a persisting condition is left to the
daily digest. The incident number changes whenever the set of conditions does, so an
acknowledgement holds "until it changes", and it keys idempotency.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from certwatch.rules.causes import Cause, Status


class Event(enum.StrEnum):
    ENABLE_FAILED = "enable_failed"
    ABOUT_TO_EXPIRE = "about_to_expire"
    EXPIRED = "expired"
    MISMATCH = "mismatch"
    NO_CERTIFICATE = "no_certificate"
    CHAIN_FAILED = "chain_failed"
    NETWORK_FAILURE = "network_failure"
    RECOVERED = "recovered"
    CERTIFICATE_CHANGED = "certificate_changed"
    SERVICE_ENDING = "service_ending"
    SERVICE_ENDED = "service_ended"
    RENEWAL_DONE = "renewal_done"  # by hosting (contracts.hosting)
    RENEWAL_FAILED = "renewal_failed"
    HOSTING_ENDING = "hosting_ending"
    UPLOAD_EXPIRING = "upload_expiring"


MAX_NETWORK_FAILURES = 5  # the classifier repeats a non-SECURE verdict while its streak is at most 5
MAX_EXPIRY_THRESHOLD_DAYS = 365

# Conditions a verdict can put a domain in (RECOVERED and CERTIFICATE_CHANGED are moments, not states).
_BY_CAUSE = {
    Cause.EXPIRED: Event.EXPIRED,
    Cause.CERTIFICATE_MISMATCH: Event.MISMATCH,
    Cause.NO_SSL_CERTIFICATE: Event.NO_CERTIFICATE,
    Cause.CHAIN_VALIDATION_FAILED: Event.CHAIN_FAILED,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    causes: frozenset[str] = frozenset()
    days_left: int | None = None  # of the served leaf certificate, when one was read


@dataclass(frozen=True, slots=True)
class DomainRules:
    """Per-domain settings over the account's; defaults make alerts work with nothing configured."""

    expiry_threshold_days: int = 30
    network_failures: int = 2  # consecutive failures before one pages anyone
    enabled: frozenset[Event] = frozenset(Event)

    def __post_init__(self) -> None:
        if not 1 <= self.network_failures <= MAX_NETWORK_FAILURES:
            raise ValueError(
                f"network_failures: must be from 1 to {MAX_NETWORK_FAILURES}, got {self.network_failures}"
            )
        if not 1 <= self.expiry_threshold_days <= MAX_EXPIRY_THRESHOLD_DAYS:
            raise ValueError(
                f"expiry_threshold_days: must be from 1 to {MAX_EXPIRY_THRESHOLD_DAYS},"
                f" got {self.expiry_threshold_days}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"expiry_threshold_days": self.expiry_threshold_days, "network_failures": self.network_failures,
                "enabled": sorted(self.enabled)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainRules:
        """Stored or requested settings over the defaults; ValueError names a bad field."""
        default = cls()
        try:
            enabled = frozenset(Event(e) for e in data.get("enabled", default.enabled))
        except ValueError as exc:
            raise ValueError(f"enabled: {exc}; events: {', '.join(Event)}") from None
        return cls(
            expiry_threshold_days=int(data.get("expiry_threshold_days", default.expiry_threshold_days)),
            network_failures=int(data.get("network_failures", default.network_failures)),
            enabled=enabled,
        )


@dataclass(frozen=True, slots=True)
class Memory:
    """What the notifier remembers of a domain between verdicts."""

    active: frozenset[Event] = frozenset()
    incident: int = 0
    network_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"active": sorted(self.active), "incident": self.incident,
                "network_failures": self.network_failures}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Memory:
        return cls(
            active=frozenset(Event(e) for e in data.get("active", ())),
            incident=int(data.get("incident", 0)),
            network_failures=int(data.get("network_failures", 0)),
        )


def conditions(verdict: Verdict, rules: DomainRules, network_failures: int) -> frozenset[Event]:
    """The alerting conditions `verdict` shows under `rules` (expiry by the domain's own threshold)."""
    if verdict.status == Status.ENABLE_FAILED:
        return frozenset({Event.ENABLE_FAILED})
    found = {_BY_CAUSE[Cause(c)] for c in verdict.causes if c in _BY_CAUSE}
    days = verdict.days_left
    if days is not None and days < 0:
        found.add(Event.EXPIRED)
    if Event.EXPIRED not in found:
        if days is None:  # no leaf read this time: trust the classifier's own threshold
            about = Cause.ABOUT_TO_EXPIRE in verdict.causes
        else:
            about = days <= rules.expiry_threshold_days
        if about:
            found.add(Event.ABOUT_TO_EXPIRE)
    if network_failures >= rules.network_failures:
        found.add(Event.NETWORK_FAILURE)
    return frozenset(found)


def on_verdict(
    memory: Memory, verdict: Verdict, rules: DomainRules, *, streak: int = 1
) -> tuple[Memory, list[Event]]:
    """The next memory and the events to announce now, in a stable order.

    `streak` is the classifier's count of consecutive probes with this status and primary
    cause; the notifier's own count of consecutive network-failure verdicts stands in when
    it is larger (a classifier that appends every probe and counts nothing).
    """
    unreachable = Cause.NETWORK_CONNECTION_FAILURE in verdict.causes
    failures = max(streak, memory.network_failures + 1) if unreachable else 0
    if unreachable:
        # An unreachable server says nothing new about its certificate: keep what was known.
        active = (memory.active - {Event.NETWORK_FAILURE}) | conditions(verdict, rules, failures)
    else:
        active = conditions(verdict, rules, failures)
    events = sorted(active - memory.active)
    if memory.active and not active and verdict.status == Status.SECURE:
        events.append(Event.RECOVERED)
    incident = memory.incident + 1 if active and active != memory.active else memory.incident
    new = Memory(active=active, incident=incident, network_failures=failures)
    return new, [e for e in events if e in rules.enabled]


# A new leaf with the same subject, issuer and key is a renewal; any of these is not.
UNEXPECTED_CHANGES = frozenset({"SUBJECT", "ISSUER", "PUBLIC_KEY"})


def on_ownership_changed(
    kinds: Iterable[str], rules: DomainRules, *, alerted_with_it: bool, renewed_by_hosting: bool = False
) -> bool:
    """Whether a change of what the domain serves is announced on its own: not a plain renewal, not
    one hosting made, and not one that came with an alert of its own (that alert tells the story)."""
    unexpected = bool(UNEXPECTED_CHANGES.intersection(kinds))
    return (
        unexpected
        and not renewed_by_hosting
        and not alerted_with_it
        and Event.CERTIFICATE_CHANGED in rules.enabled
    )


def on_service_end(ends_at: datetime, now: datetime, warn_days: int = 7) -> Event | None:
    """Whether the monitoring service's end is near (quota), or has come."""
    if now >= ends_at:
        return Event.SERVICE_ENDED
    return Event.SERVICE_ENDING if ends_at - now <= timedelta(days=warn_days) else None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A local-time window (may wrap midnight) in which alerts wait; start == end means none."""

    start: time
    end: time
    tz: str

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.tz)).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def next_local(now: datetime, at: time, tz: str) -> datetime:
    """The first instant after `now` (aware) whose wall clock in `tz` reads `at`, or the first after a DST gap."""
    zone = ZoneInfo(tz)
    day = now.astimezone(zone).date()
    for offset in range(3):
        candidate = _at(day + timedelta(days=offset), at, zone)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: a wall-clock time recurs within three days")


def _at(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous time (DST ends) is its first occurrence; a nonexistent one (DST starts)
    # round-trips through UTC to the wall-clock time just after the gap.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Suppression:
    quiet: QuietHours | None = None
    muted_until: datetime | None = None
    acknowledged_incident: int | None = None


@dataclass(frozen=True, slots=True)
class Send:
    at: datetime  # now, or when quiet hours end


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


def decide(now: datetime, incident: int, s: Suppression, *, reminder: bool = False) -> Send | Drop:
    """Send now, after quiet hours, or not at all (muted; or a reminder of an acknowledged incident)."""
    if s.muted_until is not None and now < s.muted_until:
        return Drop(f"muted until {s.muted_until.isoformat()}")
    if reminder and s.acknowledged_incident == incident:
        return Drop(f"incident {incident} acknowledged")
    if s.quiet is not None and s.quiet.start != s.quiet.end and s.quiet.contains(now):
        return Send(next_local(now, s.quiet.end, s.quiet.tz))
    return Send(now)


@dataclass(frozen=True, slots=True)
class Key:
    """What makes a delivery unique: the same alert never goes twice to the same place."""

    event: str
    domain_id: str
    contact_id: str
    channel: str
    incident: str

    def digest(self) -> str:
        raw = "\x1f".join((self.event, self.domain_id, self.contact_id, self.channel, self.incident))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0
    max_attempts: int = 8

    throttle_wait: float = 60.0  # a rate limit without a hint of how long
    throttle_deadline: float = 24 * 3600.0  # how long past its due time a throttled delivery may wait

    def delay(self, attempt: int, hint: float = 0.0) -> float | None:
        """Seconds before attempt `attempt + 1` (at least the vendor's hint), or None once attempts are spent."""
        if attempt >= self.max_attempts:
            return None
        return max(hint, min(self.cap, self.base * self.factor ** (attempt - 1)))

    def throttled(self, hint: float, waited: float) -> float | None:
        """Seconds to wait for a rate limit to lift (the vendor's hint, capped), which spends no
        attempt: nothing was refused. None once the delivery, `waited` seconds past due, would
        outlive the deadline: a robot throttled for a day is as good as down."""
        delay = min(self.cap, hint) if hint > 0 else self.throttle_wait
        return None if waited + delay > self.throttle_deadline else delay
