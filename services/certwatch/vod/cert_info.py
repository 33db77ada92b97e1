"""DescribeVodDomainCertificateInfo, answered from what certwatch observed.

An accelerated domain is, until `AddVodDomain` exists, any monitored domain of the
caller's account (`vod_observed_hosts`, account-scoped: another account's domain answers
exactly like one that does not exist). Its certificates are the leaf certificates its
addresses serve, as the classifier's `CertificateChainObserved` events said, with their
facts from those events (`vod_certificates`) and, where a probe has stored it, the DER
from the platform's `certificates` store (for the PEM).

Those certificates were deployed by the user, not issued or hosted by certwatch, so
`CertType` is `upload` and `Status` (filled only for `free`) is empty. `DomainCnameStatus`
is empty: no CNAME check exists yet, and no value is made up.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform.certificates import StoredCertificate
from certwatch.rules.facts import CertFacts
from certwatch.rules.targets import ValidationError, normalize_hostname
from certwatch.vod.errors import ApiError
from certwatch.vod.signing import TIME_FORMAT

CERT_INFO_FIELDS = (
    "CertDomainName", "CertExpireTime", "CertId", "CertLife", "CertName", "CertOrg", "CertRegion",
    "CertStartTime", "CertType", "CertUpdateTime", "DomainCnameStatus", "DomainName",
    "ServerCertificate", "ServerCertificateStatus", "Status",
)  # fmt: skip


def domain_name(raw: str | None) -> str:
    if not raw:
        raise ApiError("MissingDomainName", "The input parameter DomainName that is mandatory for processing this request is not supplied.")  # fmt: skip
    try:
        return normalize_hostname(raw, field="DomainName")
    except ValidationError as exc:
        raise ApiError("InvalidDomainName.Malformed", f"The specified DomainName {raw!r} is malformed: {exc}.") from None  # fmt: skip


def cert_life(not_before: datetime, not_after: datetime) -> str:
    """The validity period as the console words it: "3 months", "1 year"."""
    days = (not_after - not_before).total_seconds() / 86400
    months = max(1, round(days / 30.44))
    if months < 12:
        return f"{months} month" + ("s" if months > 1 else "")
    years = round(days / 365.25)
    return f"{years} year" + ("s" if years > 1 else "")


def _covers(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.count(".") == pattern.count(".") and host.endswith(pattern[1:])
    return pattern == host


def cert_info(
    host: str, facts: CertFacts, pem: str | None, observed_at: datetime | None, region: str
) -> dict[str, str]:
    """One CertInfo of the response, every field a string as the SDK's model has them."""
    names = list(facts.dns_names) or ([facts.subject_cn] if facts.subject_cn else [])
    matching = next((n for n in names if _covers(n, host)), names[0] if names else "")
    return {
        "CertDomainName": matching,
        "CertExpireTime": facts.not_after.strftime(TIME_FORMAT),
        "CertId": facts.sha256,
        "CertLife": cert_life(facts.not_before, facts.not_after),
        "CertName": facts.subject_cn or matching,
        "CertOrg": facts.issuer_org or facts.issuer_cn or "",
        "CertRegion": region,
        "CertStartTime": facts.not_before.strftime(TIME_FORMAT),
        "CertType": "upload",
        "CertUpdateTime": observed_at.strftime(TIME_FORMAT) if observed_at else "",
        "DomainCnameStatus": "",
        "DomainName": host,
        "ServerCertificate": pem or "",
        "ServerCertificateStatus": "on",
        "Status": "",
    }


def no_certificate(host: str, region: str) -> dict[str, str]:
    """A domain with no certificate observed (not probed yet, or serving no TLS)."""
    info = dict.fromkeys(CERT_INFO_FIELDS, "")
    info.update(DomainName=host, CertRegion=region, ServerCertificateStatus="off")
    return info


async def describe(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, params: Mapping[str, str], *, region: str
) -> dict[str, Any]:
    host = domain_name(params.get("DomainName"))
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT serving, observed_at FROM vod_observed_hosts"
            " WHERE account_id = %s AND host = %s ORDER BY port <> 443, port LIMIT 1",
            (account_id, host),
        )
        row = await cur.fetchone()
        if row is None:
            raise ApiError("InvalidDomain.NotFound", f"The domain {host} does not exist in this account.")  # fmt: skip
        serving: Mapping[str, list[str]] = row[0] or {}
        leaves = sorted({chain[0] for chain in serving.values() if chain})
        cur = await conn.execute(
            "SELECT c.sha256, c.facts, p.der FROM vod_certificates c"
            " LEFT JOIN certificates p ON p.sha256 = decode(c.sha256, 'hex')"
            " WHERE c.sha256 = ANY(%b)",
            (leaves,),
        )
        found = await cur.fetchall()
    infos = []
    for sha256, facts, der in sorted(found, key=lambda r: (r[1]["not_after"], r[0])):
        pem = StoredCertificate(sha256, facts, None if der is None else bytes(der)).pem()
        infos.append(cert_info(host, CertFacts.from_dict(facts), pem, row[1], region))
    return {"CertInfos": {"CertInfo": infos or [no_certificate(host, region)]}}
