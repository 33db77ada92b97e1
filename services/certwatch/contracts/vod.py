"""Accelerated (VOD) domains and their certificates, appended by vod on `vod_domain-<id>`
streams (the id is `domain_id(account, name)`: one stream per name and account, so a second
AddVodDomain of a live name loses the optimistic-concurrency race instead of duplicating it).

Read by vod's own views and, for `cert_type == "free"`, by whoever issues free certificates
(hosting): a `VodDomainCertificateSet` with `free` is the application for one. An uploaded
certificate's private key travels only sealed (`platform.shredding`, subject
`vod-cert-key:<cert id>`), never in clear.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from certwatch.contracts.payload import Category, Payload
from certwatch.platform.events import stable_id

STREAM = Category("vod_domain")
stream_id = STREAM.stream_id

VOD_DOMAIN_ADDED = "VodDomainAdded"
VOD_DOMAIN_REMOVED = "VodDomainRemoved"
VOD_DOMAIN_CERTIFICATE_SET = "VodDomainCertificateSet"
VOD_CERTIFICATE_UPLOADED = "VodCertificateUploaded"
VOD_EVENTS = (VOD_DOMAIN_ADDED, VOD_DOMAIN_REMOVED, VOD_DOMAIN_CERTIFICATE_SET, VOD_CERTIFICATE_UPLOADED)


def domain_id(account_id: uuid.UUID | str, domain_name: str) -> uuid.UUID:
    """The stream of a name in an account: removed and added again, it continues there."""
    return stable_id("vod-domain", account_id, domain_name)


class VodDomainEvent(Payload, frozen=True, kw_only=True):
    vod_domain_id: str
    account_id: str
    domain_name: str


class VodDomainAdded(VodDomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = VOD_DOMAIN_ADDED
    sources: str  # the origin servers, as the JSON text AddVodDomain was given
    scope: str
    cname: str  # the CDN target the domain's CNAME must point to ("" when none is configured)
    added_at: datetime


class VodDomainRemoved(VodDomainEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = VOD_DOMAIN_REMOVED
    removed_at: datetime


class VodCertificateUploaded(VodDomainEvent, frozen=True, kw_only=True):
    """A certificate given with its key (SetVodDomainCertificate upload): the chain as
    verified and ordered, leaf first."""

    TYPE: ClassVar[str] = VOD_CERTIFICATE_UPLOADED
    cert_id: str  # a decimal number (the SDK's CertId is an integer)
    cert_name: str
    chain_pem: str
    sealed_private_key: str
    uploaded_at: datetime


class VodDomainCertificateSet(VodDomainEvent, frozen=True, kw_only=True):
    """SSL on (with a certificate: `free`, `cas` by id, or an `upload`'s id) or off."""

    TYPE: ClassVar[str] = VOD_DOMAIN_CERTIFICATE_SET
    ssl_protocol: str  # "on" or "off"
    cert_type: str  # "free", "cas", "upload"; "" when off
    cert_id: str  # "" for free and off
    cert_name: str
    set_at: datetime
