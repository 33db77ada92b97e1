"""DescribeVodDomainCertificateInfo, answered from real state only.

An accelerated domain (AddVodDomain) answers with the certificate set for it
(SetVodDomainCertificate / SetVodDomainSSLCertificate):

- `upload` / `cas`: that certificate (uploaded through this API, or hosting's: issued or
  uploaded there), with its chain as PEM;
- `free`: `Status` follows the real lifecycle: `unsupport_wildcard` and `domain_invalid`
  from the name, then `checking` / `cname_error` from a DNS lookup of its CNAME against
  CERTWATCH_VOD_CNAME_SUFFIX, then the state of hosting's ACME order for the name
  (`applying`, `failed`, `success`, from vod's projection of hosting's events); with no
  order in hosting `Status` stays empty rather than a made-up value. Once `success`, the
  issued certificate's fields are answered;
- SSL off: no certificate, `ServerCertificateStatus=off`.

A monitored domain of the account that is not an accelerated one answers with what its
addresses serve, as the classifier's `CertificateChainObserved` events said
(`vod_observed_hosts`), `CertType=upload` (deployed by the user). Another account's domain
answers exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import dns
from certwatch.platform.certificates import StoredCertificate
from certwatch.rules.facts import CertFacts
from certwatch.vod import cname, names
from certwatch.vod.change_feed import Cache
from certwatch.vod.domains import DomainRow, VodDomains
from certwatch.vod.errors import ApiError
from certwatch.vod.hosting_views import SUCCESS
from certwatch.vod.signing import TIME_FORMAT
from certwatch.vod.uploads import CertSummary

CERT_INFO_FIELDS = (
    "CertDomainName", "CertExpireTime", "CertId", "CertLife", "CertName", "CertOrg", "CertRegion",
    "CertStartTime", "CertType", "CertUpdateTime", "DomainCnameStatus", "DomainName",
    "ServerCertificate", "ServerCertificateStatus", "Status",
)  # fmt: skip


def cert_life(not_before: datetime, not_after: datetime) -> str:
    """The validity period as the console words it: "3 months", "1 year"."""
    days = (not_after - not_before).total_seconds() / 86400
    months = max(1, round(days / 30.44))
    if months < 12:
        return f"{months} month" + ("s" if months > 1 else "")
    years = round(days / 365.25)
    return f"{years} year" + ("s" if years > 1 else "")


def of_facts(facts: CertFacts) -> CertSummary:
    """An observed certificate's facts in the shape an uploaded one's have."""
    return CertSummary(
        sha256=facts.sha256, common_name=facts.subject_cn or "", issuer_org=facts.issuer_org or facts.issuer_cn or "",
        dns_names=facts.dns_names, not_before=facts.not_before, not_after=facts.not_after,
        algorithm=facts.key_type, sign_algorithm=facts.signature_algorithm or "",
    )  # fmt: skip


def cert_info(
    host: str, cert: CertSummary, *, pem: str, cert_id: str, cert_name: str, cert_type: str,
    updated_at: datetime | None, region: str,
) -> dict[str, str]:  # fmt: skip
    """One CertInfo of the response, every field a string as the SDK's model has them."""
    candidates = list(cert.dns_names) or ([cert.common_name] if cert.common_name else [])
    matching = next(
        (n for n in candidates if names.covers(n, host) or n == host), candidates[0] if candidates else ""
    )
    return {
        "CertDomainName": matching,
        "CertExpireTime": cert.not_after.strftime(TIME_FORMAT),
        "CertId": cert_id,
        "CertLife": cert_life(cert.not_before, cert.not_after),
        "CertName": cert_name or cert.common_name or matching,
        "CertOrg": cert.issuer_org,
        "CertRegion": region,
        "CertStartTime": cert.not_before.strftime(TIME_FORMAT),
        "CertType": cert_type,
        "CertUpdateTime": updated_at.strftime(TIME_FORMAT) if updated_at else "",
        "DomainCnameStatus": "",
        "DomainName": host,
        "ServerCertificate": pem,
        "ServerCertificateStatus": "on",
        "Status": "",
    }


def no_certificate(host: str, region: str, **fields: str) -> dict[str, str]:
    """A domain with no certificate (SSL off, none observed yet, none issued yet)."""
    info = dict.fromkeys(CERT_INFO_FIELDS, "")
    info.update({"DomainName": host, "CertRegion": region, "ServerCertificateStatus": "off", **fields})
    return info


@dataclass(frozen=True, slots=True)
class FreeOrder:
    status: str  # applying, failed, success
    cert_id: str = ""
    chain_pem: str = ""
    leaf: CertSummary | None = None  # the issued certificate, once `success`


async def free_order_status(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, name: str
) -> FreeOrder | None:
    """Where hosting's ACME order for `name` stands (vod's projection of hosting's events,
    `hosting_views`): the account's most recent live instance applied for it (or for a
    wildcard covering it); None when hosting has none."""
    candidates = [name] + ([names.WILDCARD + name.split(".", 1)[1]] if "." in name else [])
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT o.status, c.cert_id, c.chain_pem, c.summary FROM vod_free_orders o"
            " LEFT JOIN vod_hosting_certificates c ON c.certificate_id = o.certificate_id"
            " WHERE o.account_id = %s AND o.names && %s::text[] AND o.status <> ''"
            " ORDER BY o.ended, o.at DESC LIMIT 1",
            (account_id, candidates),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    if row[0] != SUCCESS or row[3] is None:
        return FreeOrder(row[0])
    return FreeOrder(row[0], row[1], row[2], CertSummary.from_dict(row[3]))


class CertInfo:
    def __init__(
        self, pool: AsyncConnectionPool[Any], domains: VodDomains, *, region: str, cname_suffix: str | None,
        nameservers: Sequence[dns.Nameserver],
    ) -> None:  # fmt: skip
        self._pool, self._domains, self._region = pool, domains, region
        self._suffix, self._nameservers = cname_suffix, tuple(nameservers)
        self._answers: Cache[list[dict[str, str]]] = Cache(domains.feed)  # dropped like the rows

    async def describe(self, account_id: uuid.UUID, params: Mapping[str, str]) -> dict[str, Any]:
        host = names.domain_name(params.get("DomainName"))
        topic = f"account:{account_id}"
        cached, infos = self._answers.get(topic, host)
        if not cached or infos is None:
            epoch = self._domains.feed.epoch
            row, cert = await self._domains.row_and_certificate(account_id, host)
            infos = await (
                self._configured(account_id, row, cert) if row else self._observed(account_id, host)
            )
            if row is not None and not (row.ssl_protocol == "on" and row.cert_type == "free"):
                # Only vod's rows make this answer (a free one also asks DNS and hosting's view).
                self._answers.put(topic, host, infos, epoch)
        return {"CertInfos": {"CertInfo": infos}}

    async def _configured(
        self, account_id: uuid.UUID, row: DomainRow, cert: tuple[str, CertSummary] | None
    ) -> list[dict[str, str]]:
        host, region = row.domain_name, self._region
        if row.ssl_protocol != "on":
            return [no_certificate(host, region)]
        if row.cert_type == "free":
            return [await self._free(account_id, row)]
        if cert is None:  # its upload event not applied yet (the command waits for it)
            return [no_certificate(host, region, CertType=row.cert_type, CertId=row.cert_id)]
        chain_pem, summary = cert
        return [cert_info(host, summary, pem=chain_pem, cert_id=row.cert_id, cert_name=row.cert_name,
                          cert_type=row.cert_type, updated_at=row.modified_at, region=region)]  # fmt: skip

    async def _free(self, account_id: uuid.UUID, row: DomainRow) -> dict[str, str]:
        host = row.domain_name
        status = names.free_refusal(host)
        cname_status = ""
        if status is None:
            if not self._suffix:  # nothing to point at: the CNAME can never be right
                cname_status = status = cname.Cname.ELSEWHERE.value
            else:
                cname_status = (await cname.lookup(host, self._suffix, self._nameservers)).value
                status = cname_status
                if cname_status == cname.Cname.OK:
                    order = await free_order_status(self._pool, account_id, host)
                    status = "" if order is None else order.status
                    if order is not None and order.leaf is not None:
                        info = cert_info(host, order.leaf, pem=order.chain_pem, cert_id=order.cert_id,
                                         cert_name=row.cert_name, cert_type="free", updated_at=order.leaf.not_before,
                                         region=self._region)  # fmt: skip
                        return {**info, "Status": status, "DomainCnameStatus": cname_status}
        return no_certificate(host, self._region, CertType="free", CertName=row.cert_name, Status=status,
                              DomainCnameStatus=cname_status, ServerCertificateStatus="on")  # fmt: skip

    async def _observed(self, account_id: uuid.UUID, host: str) -> list[dict[str, str]]:
        async with self._pool.connection() as conn:
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
            pem = StoredCertificate(sha256, facts, None if der is None else bytes(der)).pem() or ""
            infos.append(cert_info(host, of_facts(CertFacts.from_dict(facts)), pem=pem, cert_id=sha256,
                                   cert_name="", cert_type="upload", updated_at=row[1], region=self._region))  # fmt: skip
        return infos or [no_certificate(host, self._region)]
