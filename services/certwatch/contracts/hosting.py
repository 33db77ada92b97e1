"""Certificate hosting, appended by the hosting orchestrator on `hosting-<instance id>` streams.

One stream per certificate instance (one year of hosting); uploaded certificates have a
stream of their own, `hosting_cert-<certificate id>`. Readers: the VOD API (instance, order
and certificate state, `CertType=cas` for uploads) and the notifier, which alerts on
`HostingRenewalSucceeded`, `HostingRenewalFailed`, `HostingEnding` and
`HostingUploadedCertificateExpiring` (`NOTIFIER_EVENTS`).

Private keys only ever travel sealed (`sealed_key`: AES-GCM under the certificate's own data
key, subject `hosting-key:<certificate id>`, see platform/shredding.py); shredding that key
makes every copy unreadable while the events stay.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from certwatch.contracts.payload import Category, Payload

STREAM = Category("hosting")
stream_id = STREAM.stream_id
CERT_STREAM = Category("hosting_cert")
cert_stream_id = CERT_STREAM.stream_id


class InstanceState(StrEnum):
    PENDING_APPLICATION = "PENDING_APPLICATION"  # waits for the user's application (first year)
    NOT_ACTIVATED = "NOT_ACTIVATED"  # a later year, activated when the one before ends
    APPLYING = "APPLYING"  # application known, first certificate not issued yet
    HOSTED = "HOSTED"  # a certificate is issued and renewed by certwatch
    ENDED = "ENDED"  # its year is over


class KeyType(StrEnum):
    EC256 = "ec256"
    RSA2048 = "rsa2048"


class Validation(StrEnum):
    HTTP_01 = "http-01"
    DNS_01 = "dns-01"


class FailureKind(StrEnum):
    CHALLENGE_FAILED = "CHALLENGE_FAILED"
    CA_ERROR = "CA_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_NONCE = "BAD_NONCE"
    CA_UNREACHABLE = "CA_UNREACHABLE"


class Application(msgspec.Struct, frozen=True, kw_only=True):
    """What the user submitted for the first instance; later renewals and years reuse it."""

    names: list[str]
    key_type: KeyType
    company: str
    contact_email: str
    validation: Validation


class InstanceEvent(Payload, frozen=True, kw_only=True):
    """What every event of an instance's stream carries."""

    instance_id: str
    account_id: str
    at: datetime


class InstanceCreated(InstanceEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "HostingInstanceCreated"
    subscription_id: str
    year: int  # 1-based
    years: int
    state: InstanceState
    previous_instance_id: str | None = None
    next_instance_id: str | None = None


class InstanceStateChanged(InstanceEvent, frozen=True, kw_only=True):
    """Every state an instance passes, with time and reason (the seed's Status icon)."""

    TYPE: ClassVar[str] = "HostingInstanceStateChanged"
    state: InstanceState
    reason: str
    year_ends_at: datetime | None = None  # set when the instance is activated


class ApplicationSubmitted(InstanceEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "HostingApplicationSubmitted"
    application: Application
    automatic: bool  # True when certwatch applied with an earlier year's information


class OrderRequested(InstanceEvent, frozen=True, kw_only=True):
    """Recorded before the CA is asked: the key and CSR the order will be finalized with."""

    TYPE: ClassVar[str] = "HostingOrderRequested"
    attempt_id: str
    certificate_id: str  # the certificate this order will become
    csr_pem: str
    sealed_key: str
    renewal: bool


class OrderPlaced(InstanceEvent, frozen=True, kw_only=True):
    """The CA's order URL, recorded before any challenge is answered: a restart resumes it."""

    TYPE: ClassVar[str] = "HostingOrderPlaced"
    attempt_id: str
    order_url: str
    adopted: bool = False  # found open at the CA after a crash between placing and recording it


class OrderFailed(InstanceEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "HostingRenewalFailed"
    attempt_id: str
    order_url: str | None
    kind: FailureKind
    detail: str
    failures: int  # consecutive failures of this instance so far
    retry_at: datetime
    renewal: bool
    order_abandoned: bool  # the order cannot complete any more: the next try places a new one


class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    """A certificate's public facts and PEM (leaf, then the chain up to the root's child)."""

    serial: str  # hex
    not_before: datetime
    not_after: datetime
    names: list[str]
    issuer: str
    cert_pem: str
    chain_pem: str


class CertificateIssued(InstanceEvent, frozen=True, kw_only=True):
    """An instance's first certificate (the instance is HOSTED from now on)."""

    TYPE: ClassVar[str] = "HostingCertificateIssued"
    certificate_id: str
    certificate: Certificate
    sealed_key: str
    order_url: str
    renew_at: datetime
    renew_source: str  # "ari" or "lifetime"
    ari_check_at: datetime | None = None  # when to ask the CA's ARI again (None: it has none)


class RenewalRescheduled(InstanceEvent, frozen=True, kw_only=True):
    """The CA's ARI window moved (RFC 9773: asked again when it said to)."""

    TYPE: ClassVar[str] = "HostingRenewalRescheduled"
    certificate_id: str
    renew_at: datetime
    renew_source: str
    ari_check_at: datetime | None


class CertificateRenewed(CertificateIssued, frozen=True, kw_only=True):
    """A later certificate of a hosted instance, issued with no user action."""

    TYPE: ClassVar[str] = "HostingRenewalSucceeded"


class RenewalRequested(InstanceEvent, frozen=True, kw_only=True):
    """ "Renew now" from the user."""

    TYPE: ClassVar[str] = "HostingRenewalRequested"


class HostingEnding(InstanceEvent, frozen=True, kw_only=True):
    """The subscription's last year is over: the last certificate will not be renewed."""

    TYPE: ClassVar[str] = "HostingEnding"
    subscription_id: str
    certificate_id: str | None
    last_expiry: datetime | None


class CertificateUploaded(Payload, frozen=True, kw_only=True):
    """A certificate issued elsewhere (`CertType=cas` for the VOD API), monitored for expiry."""

    TYPE: ClassVar[str] = "HostingCertificateUploaded"
    certificate_id: str
    account_id: str
    certificate: Certificate
    sealed_key: str
    at: datetime


class UploadedCertificateExpiring(Payload, frozen=True, kw_only=True):
    """An uploaded certificate (certwatch cannot renew it) is about to expire: replace it."""

    TYPE: ClassVar[str] = "HostingUploadedCertificateExpiring"
    certificate_id: str
    account_id: str
    names: list[str]
    not_after: datetime
    at: datetime


class CertificateDeleted(Payload, frozen=True, kw_only=True):
    """The certificate's key material is destroyed (its data key shredded); the events stay."""

    TYPE: ClassVar[str] = "HostingCertificateDeleted"
    certificate_id: str
    account_id: str
    at: datetime


INSTANCE_EVENTS = (
    InstanceCreated, InstanceStateChanged, ApplicationSubmitted, OrderRequested, OrderPlaced,
    OrderFailed, CertificateIssued, CertificateRenewed, RenewalRescheduled, RenewalRequested, HostingEnding,
)  # fmt: skip
RENEWAL_SUCCEEDED = CertificateRenewed.TYPE
RENEWAL_FAILED = OrderFailed.TYPE
HOSTING_ENDING = HostingEnding.TYPE
UPLOAD_EXPIRING = UploadedCertificateExpiring.TYPE
NOTIFIER_EVENTS = (RENEWAL_SUCCEEDED, RENEWAL_FAILED, HOSTING_ENDING, UPLOAD_EXPIRING)
