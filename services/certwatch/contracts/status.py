"""Verdicts and what a domain serves, appended by the classifier on `status-<domain id>` streams.

`DomainClassified` is appended when a domain's verdict changes (and for every enable check),
read by the inventory, the prober, the notifier, hosting and the VOD API;
`CertificateChainObserved` and `OwnershipChanged` only when what the domain serves differs
from the last observation. A probe that changes nothing appends nothing: it is an
observation (`platform.observations`), and the log holds facts of record.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

import msgspec

from certwatch.contracts.payload import Category, Payload
from certwatch.rules import quota
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict
from certwatch.rules.facts import AtsResult

STREAM = Category("status")
stream_id = STREAM.stream_id

DOMAIN_CLASSIFIED = "DomainClassified"
CERTIFICATE_CHAIN_OBSERVED = "CertificateChainObserved"
OWNERSHIP_CHANGED = "OwnershipChanged"


class AddressVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved address classified on its own: the report names the stale node."""

    ip: str
    status: Status
    primary_cause: Cause | None = None
    causes: tuple[Cause, ...] = ()
    phase: str
    error: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    leaf_sha256: str | None = None
    ats: AtsResult | None = None


class DomainClassified(Payload, frozen=True, kw_only=True):
    """A verdict that changed, for the enable generation it was probed in.

    `streak`: consecutive probes that gave this same verdict, counting this one. A
    non-SECURE verdict is appended again while its streak is at most 5
    (`classifier.verdicts.STREAK_REPEATS`), so a reader can act on N failures in a row;
    verdicts recorded before streaks existed read as 1.
    """

    TYPE: ClassVar[str] = DOMAIN_CLASSIFIED
    domain_id: str
    account_id: str
    generation: int
    first_check: bool
    verdict: Verdict
    recommended_action: str | None = None
    endpoints: tuple[AddressVerdict, ...] = ()
    streak: int = 1

    def period(self) -> tuple[date | None, date | None]:
        """The period this verdict would start if none is running: its day when it passes an
        enable check, else none. Views apply it with the verdict itself (the inventory's
        `MonitoringStarted`, appended just after, says the same), so a domain is never shown
        checked but not yet counting its days."""
        if not self.first_check or self.verdict.status is Status.ENABLE_FAILED:
            return None, None
        start = self.verdict.checked_at.date()
        return start, quota.service_end(start)


class CertificateChainObserved(Payload, frozen=True, kw_only=True):
    """What each address serves (fingerprints, leaf first); `certificates` holds the facts
    (`rules.facts.CertFacts` JSON) only of certificates the domain did not serve before."""

    TYPE: ClassVar[str] = CERTIFICATE_CHAIN_OBSERVED
    domain_id: str
    account_id: str
    observed_at: datetime
    serving: dict[str, tuple[str, ...]]
    certificates: tuple[dict[str, Any], ...] = ()


class Change(msgspec.Struct, frozen=True):
    kind: str  # classifier.observation.ChangeKind
    before: tuple[str, ...]
    after: tuple[str, ...]


class OwnershipChanged(Payload, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = OWNERSHIP_CHANGED
    domain_id: str
    account_id: str
    observed_at: datetime
    kinds: tuple[str, ...]
    changes: tuple[Change, ...]
