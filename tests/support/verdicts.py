"""`DomainClassified` events for tests that need a verdict without probing, built through
the contract so that they are what the classifier appends."""

from __future__ import annotations

from datetime import UTC, datetime

from certwatch.contracts.status import DomainClassified
from certwatch.platform.events import NewEvent
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict

CHECKED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def classified(
    domain_id: object, account_id: object, status: str, *, cause: str | None = None, generation: int = 1,
    first_check: bool = False, checked_at: datetime = CHECKED_AT, host: str = "www.example.test",
    streak: int = 1, days_left: int | None = None,
) -> NewEvent:  # fmt: skip
    verdict = Verdict(
        host=host, port=443, checked_at=checked_at, status=Status(status),
        primary_cause=Cause(cause) if cause else None, causes=(Cause(cause),) if cause else (),
        days_left=days_left,
    )  # fmt: skip
    return DomainClassified(
        domain_id=str(domain_id), account_id=str(account_id), generation=generation,
        first_check=first_check, verdict=verdict, streak=streak,
    ).new_event()  # fmt: skip
