"""Monitoring Details rows → the `MonitoringDetails` message.

Day counts (service days left, certificate days left, certificate status) depend on today,
so they are computed when asked, from the stored dates, rather than frozen at probe time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from certwatch.contracts.status import AddressVerdict, DomainClassified
from certwatch.platform.timestamps import timestamp
from certwatch.rules.classify import ABOUT_TO_EXPIRE_DAYS, Finding, days_left
from certwatch.rules.facts import AtsResult, CertFacts
from certwatch.v1 import classifier_pb2 as pb


@dataclass(frozen=True, slots=True)
class DetailsRow:
    domain_id: str
    host: str
    port: int
    contact_ids: Sequence[str]
    enabled: bool
    service_ends_on: date | None
    status: str
    classified: DomainClassified | None  # the verdict of the current generation, if any
    serving: Mapping[str, Sequence[str]] | None
    chain_observed_at: datetime | None
    # The last observation (probe_latest): a probe that changes nothing appends no verdict,
    # so the verdict's own time is the last change, not the last check.
    last_observed_at: datetime | None


def remaining_service_days(service_ends_on: date, today: date) -> int:
    """Days left counting today, as the quota rules count them: 1 on the last day, then 0."""
    return max(0, (service_ends_on - today).days + 1)


def certificate_status(cert: CertFacts, now: datetime) -> str:
    if now > cert.not_after:
        return "EXPIRED"
    if now < cert.not_before:
        return "NOT_YET_VALID"
    return "ABOUT_TO_EXPIRE" if days_left(cert.not_after, now) < ABOUT_TO_EXPIRE_DAYS else "VALID"


def _certificate(cert: CertFacts) -> pb.Certificate:
    return pb.Certificate(
        subject=cert.subject, subject_cn=cert.subject_cn or "", issuer=cert.issuer,
        issuer_org=cert.issuer_org or "", serial=cert.serial, sha256=cert.sha256,
        not_before=timestamp(cert.not_before), not_after=timestamp(cert.not_after),
        dns_names=cert.dns_names, ip_addresses=cert.ip_addresses, key_type=cert.key_type,
        key_bits=cert.key_bits or 0, signature_algorithm=cert.signature_algorithm or "",
        signature_hash=cert.signature_hash or "", public_key_sha256=cert.public_key_sha256 or "",
        is_ca=cert.is_ca, self_signed=cert.self_signed,
    )  # fmt: skip


def _details(row: DetailsRow, today: date) -> pb.Details:
    classified = row.classified
    verdict = classified.verdict if classified else None
    details = pb.Details(
        host=row.host, port=row.port, enabled=row.enabled, status=row.status,
        primary_cause=(verdict.primary_cause if verdict else None) or "",
        causes=verdict.causes if verdict else (),
        recommended_action=(classified.recommended_action if classified else None) or "",
        service_ends_on=row.service_ends_on.isoformat() if row.service_ends_on else "",
        checked_at=timestamp(_last_check(verdict.checked_at if verdict else None, row.last_observed_at)),
        warnings=verdict.warnings if verdict else (),
    )  # fmt: skip
    if row.service_ends_on is not None:
        details.remaining_service_days = remaining_service_days(row.service_ends_on, today)
    return details


def _last_check(verdict_at: datetime | None, observed_at: datetime | None) -> datetime | None:
    """The later of the verdict's check and the last observation; none before the verdict
    (an observation without a verdict of this generation yet has no details to date)."""
    if verdict_at is None:
        return None
    return max(verdict_at, observed_at) if observed_at is not None else verdict_at


def _ip_content(summary: AddressVerdict) -> pb.IpContent:
    entry = pb.IpContent(
        ip=summary.ip, status=summary.status, primary_cause=summary.primary_cause or "",
        causes=summary.causes, tls_version=summary.tls_version or "", cipher=summary.cipher or "",
        leaf_sha256=summary.leaf_sha256 or "", error=summary.error or "",
    )  # fmt: skip
    if summary.ats is not None:
        entry.ats_pass = summary.ats.passed
    return entry


def _ats(ats: AtsResult | None) -> pb.AtsCheck:
    if ats is None:
        return pb.AtsCheck(checked=False)
    return pb.AtsCheck(checked=True, reasons=ats.reasons, **{"pass": ats.passed})


def _finding(x: Finding) -> pb.Finding:
    return pb.Finding(cause=x.cause, detail=x.detail, ip=x.ip or "", problem=x.problem or "",
                      cert_subject=x.cert_subject or "", cert_sha256=x.cert_sha256 or "")  # fmt: skip


def _change(row: tuple[datetime, Sequence[str], Sequence[Mapping[str, Any]]]) -> pb.OwnershipChange:
    return pb.OwnershipChange(
        observed_at=timestamp(row[0]),
        changes=[pb.Change(kind=c["kind"], before=c["before"], after=c["after"]) for c in row[2]],
    )


def build(
    row: DetailsRow,
    certificates: Mapping[str, CertFacts],
    ownership: Sequence[tuple[datetime, Sequence[str], Sequence[Mapping[str, Any]]]],
    now: datetime,
) -> pb.MonitoringDetails:
    """The whole report; `certificates` holds every fingerprint that `row.serving` names."""
    verdict = row.classified.verdict if row.classified else None
    by_chain: dict[tuple[str, ...], list[str]] = {}
    for ip, chain in sorted((row.serving or {}).items()):
        by_chain.setdefault(tuple(chain), []).append(ip)
    by_leaf: dict[str, list[str]] = {}
    for chain, ips in by_chain.items():
        by_leaf.setdefault(chain[0], []).extend(ips)
    return pb.MonitoringDetails(
        domain_id=row.domain_id,
        details=_details(row, now.date()),
        ats=_ats(verdict.ats if verdict else None),
        ip_content=[_ip_content(s) for s in row.classified.endpoints] if row.classified else [],
        certificates=[
            pb.CertificateInfo(
                certificate=_certificate(leaf := certificates[fp]),
                remaining_days=days_left(leaf.not_after, now),
                brand=leaf.issuer_org or "",
                status=certificate_status(leaf, now),
                ips=sorted(ips),
            )
            for fp, ips in by_leaf.items()
        ],
        chains=[
            pb.CertificateChain(
                ips=ips,
                certificates=[_certificate(certificates[fp]) for fp in chain],
                observed_at=timestamp(row.chain_observed_at),
            )
            for chain, ips in by_chain.items()
        ],
        contact_ids=row.contact_ids,
        domain_name_updates=[_change(r) for r in ownership],
        findings=[_finding(x) for x in verdict.findings] if verdict else [],
    )
