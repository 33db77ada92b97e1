"""Domain lifecycle, verdict, chain and ownership events built through their contracts, for
tests and benches that feed projections any sequence (odd ones included) without running
the services that append them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.payload import Payload
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict

T0 = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
DAY0 = T0.date()
Event = tuple[str, NewEvent]  # (stream id, event)


class Domain:
    """Events of one domain; `at(n)` is T0 + n minutes (microseconds kept)."""

    def __init__(self, domain_id: str, account_id: str, host: str = "www.example.test") -> None:
        self.domain_id, self.account_id, self.host = domain_id, account_id, host

    @staticmethod
    def at(minute: float) -> datetime:
        return T0 + timedelta(minutes=minute)

    def _domain(self, payload: Payload, traceparent: str | None = None) -> Event:
        meta = {"traceparent": traceparent} if traceparent else None
        return dc.stream_id(self.domain_id), payload.new_event(metadata=meta)

    def _ids(self) -> dict[str, Any]:
        return {"domain_id": self.domain_id, "account_id": self.account_id}

    def added(self, *, port: int = 443, contacts: tuple[str, ...] = ("c-1",), minute: float = 0) -> Event:
        return self._domain(dc.DomainAdded(**self._ids(), host=self.host, port=port, contact_ids=contacts,
                                           added_at=self.at(minute)))  # fmt: skip

    def enabled(self, generation: int = 1, *, port: int = 443, period_start: date | None = None,
                minute: float = 1, traceparent: str | None = None) -> Event:  # fmt: skip
        ends = date(period_start.year + 1, period_start.month, period_start.day) if period_start else None
        return self._domain(dc.MonitoringEnabled(
            **self._ids(), host=self.host, port=port, period_start=period_start, service_ends_on=ends,
            generation=generation, enabled_at=self.at(minute), reserved_unit=period_start is None,
            awaiting_check=period_start is None,
        ), traceparent)  # fmt: skip

    def edited(self, port: int, contacts: tuple[str, ...] | None = None) -> Event:
        return self._domain(dc.DomainEdited(**self._ids(), host=self.host, port=port, contact_ids=contacts))

    def recheck(self, generation: int, *, port: int = 443, enable_check: bool = False) -> Event:
        return self._domain(dc.RecheckRequested(**self._ids(), host=self.host, port=port, generation=generation,
                                                enable_check=enable_check, requested_at=self.at(5)))  # fmt: skip

    def started(self, generation: int = 1, *, day: date = DAY0) -> Event:
        return self._domain(dc.MonitoringStarted(
            **self._ids(), generation=generation, period_start=day,
            service_ends_on=date(day.year + 1, day.month, day.day), consumed_unit=True, started_at=self.at(2),
        ))  # fmt: skip

    def enable_failed(self, generation: int = 1) -> Event:
        return self._domain(dc.MonitoringEnableFailed(**self._ids(), generation=generation, released_unit=True,
                                                      failed_at=self.at(2)))  # fmt: skip

    def disabled(self) -> Event:
        return self._domain(dc.MonitoringDisabled(**self._ids(), disabled_at=self.at(9)))

    def service_ended(self) -> Event:
        return self._domain(
            dc.MonitoringServiceEnded(**self._ids(), ended_on=T0.date(), period_start=T0.date())
        )

    def removed(self) -> Event:
        return self._domain(dc.DomainRemoved(**self._ids(), host=self.host, port=443))

    def classified(self, status: str, *causes: str, generation: int = 1, first_check: bool = False,
                   minute: float = 3, days_left: int | None = 60) -> Event:  # fmt: skip
        secure = status in ("SECURE", "ABNORMAL")
        verdict = Verdict(
            host=self.host, port=443, checked_at=self.at(minute), status=Status(status),
            primary_cause=Cause(causes[0]) if causes else None, causes=tuple(Cause(c) for c in causes),
            brand="Example CA" if secure else None, valid_from=self.at(-60 * 24) if secure else None,
            valid_to=self.at(60 * 24 * 60) if secure else None, days_left=days_left if secure else None,
        )  # fmt: skip
        payload = sc.DomainClassified(
            **self._ids(), generation=generation, first_check=first_check, verdict=verdict,
            recommended_action=f"fix {causes[0]}" if causes else None,
        )  # fmt: skip
        return sc.stream_id(self.domain_id), payload.new_event()

    def chain(self, serving: dict[str, tuple[str, ...]], *certificates: str, minute: float = 3) -> Event:
        facts = tuple({"sha256": c, "subject": f"CN={c[:8]}", "issuer": f"CN=CA {minute}", "minute": minute,
                       "not_after": self.at(minute + 60 * 24 * 90).isoformat()} for c in certificates)  # fmt: skip
        payload = sc.CertificateChainObserved(**self._ids(), observed_at=self.at(minute), serving=serving,
                                              certificates=facts)  # fmt: skip
        return sc.stream_id(self.domain_id), payload.new_event()

    def ownership(self, before: str, after: str, *, minute: float = 4) -> Event:
        payload = sc.OwnershipChanged(**self._ids(), observed_at=self.at(minute), kinds=("LEAF",),
                                      changes=(sc.Change("LEAF", (before,), (after,)),))  # fmt: skip
        return sc.stream_id(self.domain_id), payload.new_event()


async def append_each(event_log: EventLog, events: list[Event]) -> None:
    """Each event in a transaction of its own, in the order given."""
    for stream, event in events:
        await event_log.append(stream, [event], expected_version=None)
