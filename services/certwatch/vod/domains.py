"""The accelerated-domain use cases, apart from any transport: commands append vod's events
(contracts/vod.py), queries read its views. The HTTP actions (Alibaba's names) and the gRPC
API call the same code; every call is inside the caller's account, where another account's
domain answers exactly like one that does not exist (InvalidDomain.NotFound).

Parameters arrive as Alibaba's (`DomainName`, `SSLProtocol`, ...) in a mapping of strings;
errors are `ApiError`s in that cloud's codes (the gRPC adapter maps them once).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from certwatch.contracts import vod as vc
from certwatch.platform import retry
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up_past
from certwatch.platform.shredding import Vault
from certwatch.vod import names, uploads
from certwatch.vod.change_feed import Cache, ChangeFeed
from certwatch.vod.domain_views import DOMAIN_VIEWS
from certwatch.vod.errors import ApiError, invalid, missing
from certwatch.vod.signing import TIME_FORMAT

SCOPES = ("domestic", "overseas", "global")
SOURCE_TYPES = ("ipaddr", "domain", "oss")
CERT_TYPES = ("free", "cas", "upload")
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 20


def key_subject(cert_id: str) -> str:
    return f"vod-cert-key:{cert_id}"


def _not_found(name: str) -> ApiError:
    return ApiError("InvalidDomain.NotFound", f"The domain {name} does not exist in this account.")


def sources(raw: str | None, *, allow_none: bool = False) -> str:
    """`Sources`: a JSON array of origins, each with `content` and a known `type`
    (`allow_none`: an empty array is accepted, for callers other than AddVodDomain)."""
    if not raw:
        raise missing("Sources")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise invalid("Sources", "not JSON") from None
    if not isinstance(parsed, list) or not (parsed or allow_none):
        raise invalid("Sources", "a JSON array of at least one origin")
    for i, origin in enumerate(parsed):
        if (
            not isinstance(origin, dict)
            or not isinstance(origin.get("content"), str)
            or not origin["content"]
        ):
            raise invalid(f"Sources[{i}].content", "a non-empty string")
        if origin.get("type") not in SOURCE_TYPES:
            raise invalid(f"Sources[{i}].type", f"one of {', '.join(SOURCE_TYPES)}")
    return json.dumps(parsed, separators=(",", ":"))


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    out = []
    for name, default, top in (("PageNumber", 1, 10**6), ("PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)):
        raw = params.get(name) or str(default)
        if not raw.isdigit() or not 1 <= int(raw) <= top:
            raise invalid(name, f"a whole number from 1 to {top}")
        out.append(int(raw))
    return out[0], out[1]


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DomainRow:
    vod_domain_id: uuid.UUID
    domain_name: str
    cname: str
    sources: str
    ssl_protocol: str
    cert_type: str
    cert_id: str
    cert_name: str
    created_at: datetime
    modified_at: datetime


_ROW = ("vod_domain_id, domain_name, cname, sources, ssl_protocol, cert_type, cert_id, cert_name,"
        " created_at, modified_at")  # fmt: skip


@dataclass(frozen=True, slots=True)
class KnownCertificate:
    cert_id: str  # the decimal CertId
    name: str
    chain_pem: str
    leaf: uploads.CertSummary


class VodDomains:
    def __init__(
        self, event_log: EventLog, vault: Vault, *, cname_suffix: str | None, ca_file: str | None,
        feed: ChangeFeed | None = None,
    ) -> None:  # fmt: skip
        self._log, self._vault = event_log, vault
        self._suffix, self._ca_file = cname_suffix, ca_file
        self.feed = feed or ChangeFeed(None)
        self._lookups: Cache[tuple[DomainRow | None, tuple[str, uploads.CertSummary] | None]] = Cache(
            self.feed
        )

    async def _live(self, stream: str) -> tuple[int, bool]:
        events = await self._log.read_stream(stream)
        live = bool(events) and events[-1].type != vc.VOD_DOMAIN_REMOVED
        return len(events), live

    async def _append(self, stream: str, events: list[NewEvent], version: int) -> None:
        appended = await self._log.append(stream, events, expected_version=version)
        await catch_up_past(self._log, DOMAIN_VIEWS, appended[-1].cursor)
        self.feed.drop(f"account:{events[-1].data['account_id']}")  # read-your-writes here

    @retry.on_conflict
    async def add(
        self, account_id: uuid.UUID, params: Mapping[str, str], *, allow_no_sources: bool = False
    ) -> dict[str, Any]:
        name = names.domain_name(params.get("DomainName"))
        origins = sources(params.get("Sources"), allow_none=allow_no_sources)
        scope = params.get("Scope") or "domestic"
        if scope not in SCOPES:
            raise invalid("Scope", f"one of {', '.join(SCOPES)}")
        domain_id = vc.domain_id(account_id, name)
        stream = vc.stream_id(domain_id)
        version, live = await self._live(stream)
        if live:
            raise ApiError("DomainAlreadyExist", f"The domain {name} is already an accelerated domain of this account.")  # fmt: skip
        cname = f"{name.removeprefix(names.WILDCARD)}.{self._suffix}" if self._suffix else ""
        added = vc.VodDomainAdded(vod_domain_id=str(domain_id), account_id=str(account_id), domain_name=name,
                                  sources=origins, scope=scope, cname=cname, added_at=datetime.now(UTC))  # fmt: skip
        await self._append(stream, [added.new_event()], version)
        return {}

    async def row(self, account_id: uuid.UUID, name: str) -> DomainRow | None:
        return (await self.row_and_certificate(account_id, name))[0]

    async def row_and_certificate(
        self, account_id: uuid.UUID, name: str
    ) -> tuple[DomainRow | None, tuple[str, uploads.CertSummary] | None]:
        """The domain and, when one is set (upload, cas: uploaded here or hosting's), its
        certificate's chain and summary, in one query; cached while the change feed is live
        (any change of the account's domains or certificates drops its entries)."""
        topic = f"account:{account_id}"
        cached, found = self._lookups.get(topic, name)
        if cached and found is not None:
            return found
        epoch = self.feed.epoch
        found = await self._read_row(account_id, name)
        self._lookups.put(topic, name, found, epoch)
        return found

    async def _read_row(
        self, account_id: uuid.UUID, name: str
    ) -> tuple[DomainRow | None, tuple[str, uploads.CertSummary] | None]:
        columns = ", ".join(f"d.{c.strip()}" for c in _ROW.split(","))
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {columns}, coalesce(c.chain_pem, h.chain_pem), coalesce(c.summary, h.summary)"
                " FROM vod_domains d"
                " LEFT JOIN vod_uploaded_certificates c ON c.cert_id = d.cert_id AND c.account_id = d.account_id"
                " LEFT JOIN vod_hosting_certificates h ON d.cert_type = 'cas' AND h.cert_id = d.cert_id"
                " AND h.account_id = d.account_id"
                " WHERE d.account_id = %s AND d.domain_name = %s LIMIT 1",
                (account_id, name),
            )
            found = await cur.fetchone()
        if found is None:
            return None, None
        cert = None if found[-1] is None else (found[-2], uploads.CertSummary.from_dict(found[-1]))
        return DomainRow(*found[:-2]), cert

    @retry.on_conflict
    async def delete(self, account_id: uuid.UUID, params: Mapping[str, str]) -> dict[str, Any]:
        name = names.domain_name(params.get("DomainName"))
        domain_id = vc.domain_id(account_id, name)
        stream = vc.stream_id(domain_id)
        version, live = await self._live(stream)
        if not live:
            raise _not_found(name)
        removed = vc.VodDomainRemoved(vod_domain_id=str(domain_id), account_id=str(account_id),
                                      domain_name=name, removed_at=datetime.now(UTC))  # fmt: skip
        await self._append(stream, [removed.new_event()], version)
        return {}

    @retry.on_conflict
    async def set_certificate(
        self, account_id: uuid.UUID, params: Mapping[str, str], *, default_type: str | None = None
    ) -> dict[str, Any]:
        """SetVodDomainSSLCertificate (`CertType` given) and SetVodDomainCertificate (upload
        only: `default_type="upload"`)."""
        name = names.domain_name(params.get("DomainName"))
        protocol = params.get("SSLProtocol")
        if not protocol:
            raise missing("SSLProtocol")
        if protocol not in ("on", "off"):
            raise invalid("SSLProtocol", "on or off")
        cert_type = "" if protocol == "off" else params.get("CertType") or default_type or ""
        if protocol == "on" and cert_type not in CERT_TYPES:
            raise (
                missing("CertType")
                if not cert_type
                else invalid("CertType", f"one of {', '.join(CERT_TYPES)}")
            )
        domain_id = vc.domain_id(account_id, name)
        stream = vc.stream_id(domain_id)
        version, live = await self._live(stream)
        if not live:
            raise _not_found(name)
        base = {"vod_domain_id": str(domain_id), "account_id": str(account_id), "domain_name": name}
        events: list[NewEvent] = []
        cert_id, cert_name = "", params.get("CertName") or ""
        if cert_type == "upload":
            upload = uploads.check(
                name, params.get("SSLPub") or "", params.get("SSLPri") or "", ca_file=self._ca_file
            )
            cert_id = uploads.cert_id(account_id, upload.leaf.sha256)
            cert_name = cert_name or upload.leaf.common_name or name
            async with self._log.pool.connection() as conn, conn.transaction():
                sealed = await self._vault.seal(conn, key_subject(cert_id), upload.key_pem)
            events.append(vc.VodCertificateUploaded(**base, cert_id=cert_id, cert_name=cert_name,
                                                    chain_pem=upload.chain_pem, sealed_private_key=sealed,
                                                    uploaded_at=datetime.now(UTC)).new_event())  # fmt: skip
        elif cert_type == "cas":
            cert_id = params.get("CertId") or ""
            if not cert_id:
                raise missing("CertId")
            found = await self.certificate(account_id, cert_id)
            if found is None:
                raise ApiError("InvalidCertificate.NotFound", f"The certificate {cert_id} does not exist in this account.")  # fmt: skip
            cert_id, cert_name = found.cert_id, cert_name or found.name
        events.append(vc.VodDomainCertificateSet(**base, ssl_protocol=protocol, cert_type=cert_type, cert_id=cert_id,
                                                 cert_name=cert_name, set_at=datetime.now(UTC)).new_event())  # fmt: skip
        await self._append(stream, events, version)
        return {}

    async def certificate(self, account_id: uuid.UUID, cert_id: str) -> KnownCertificate | None:
        """One of the account's certificates by CertId: uploaded through this API, or
        hosting's (issued or uploaded there, also found by hosting's own certificate id)."""
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "(SELECT cert_id, cert_name, chain_pem, summary FROM vod_uploaded_certificates"
                " WHERE account_id = %(a)s AND cert_id = %(id)s)"
                " UNION ALL (SELECT cert_id, '', chain_pem, summary FROM vod_hosting_certificates"
                " WHERE account_id = %(a)s AND (cert_id = %(id)s OR certificate_id = %(id)s) ORDER BY at)"
                " LIMIT 1", {"a": account_id, "id": cert_id},
            )  # fmt: skip
            found = await cur.fetchone()
        if found is None:
            return None
        leaf = uploads.CertSummary.from_dict(found[3])
        return KnownCertificate(found[0], found[1] or leaf.common_name, found[2], leaf)

    async def list_domains(self, account_id: uuid.UUID, params: Mapping[str, str]) -> dict[str, Any]:
        number, size = _page(params)
        pattern = params.get("DomainName") or ""
        search = params.get("DomainSearchType") or "fuzzy_match"
        if search not in ("fuzzy_match", "exact_match", "pre_match", "suf_match"):
            raise invalid("DomainSearchType", "fuzzy_match, exact_match, pre_match or suf_match")
        like = pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = {
            "fuzzy_match": f"%{like}%",
            "exact_match": like,
            "pre_match": f"{like}%",
            "suf_match": f"%{like}",
        }[search]
        status = params.get("DomainStatus")
        if status and status != "online":  # every accelerated domain here is online
            return {"Domains": {"PageData": []}, "PageNumber": number, "PageSize": size, "TotalCount": 0}
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_ROW}, count(*) OVER () FROM vod_domains WHERE account_id = %s AND domain_name LIKE %s"
                " ORDER BY created_at, domain_name LIMIT %s OFFSET %s",
                (account_id, like, size, (number - 1) * size),
            )
            rows = await cur.fetchall()
        total = rows[0][-1] if rows else 0
        return {"Domains": {"PageData": [_page_data(DomainRow(*r[:-1])) for r in rows]},
                "PageNumber": number, "PageSize": size, "TotalCount": total}  # fmt: skip

    async def list_certificates(self, account_id: uuid.UUID, params: Mapping[str, str]) -> dict[str, Any]:
        name = names.domain_name(params["DomainName"]) if params.get("DomainName") else None
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT cert_id, cert_name, domain_name, summary, uploaded_at, cert_id FROM vod_uploaded_certificates"
                " WHERE account_id = %(a)s UNION ALL SELECT cert_id, '', '', summary, at, certificate_id"
                " FROM vod_hosting_certificates WHERE account_id = %(a)s ORDER BY 5, 1", {"a": account_id},
            )  # fmt: skip
            rows = await cur.fetchall()
        certs = []  # hosting's certificates too (CertIdentifier: hosting's id), as cas can use them
        for cert_id, cert_name, domain, summary, uploaded_at, identifier in rows:
            leaf = uploads.CertSummary.from_dict(summary)
            matches = name is not None and any(
                names.covers(n, name) for n in leaf.dns_names or (leaf.common_name,)
            )
            if name is not None and not matches and domain != name:
                continue
            certs.append({"CertId": int(cert_id), "CertName": cert_name or leaf.common_name, "Common": leaf.common_name,
                          "Fingerprint": leaf.sha256, "Issuer": leaf.issuer_org, "CreateTime": _ms(uploaded_at),
                          "LastTime": _ms(uploaded_at), "EndTime": _ms(leaf.not_after),
                          "Algorithm": leaf.algorithm, "SignAlgorithm": leaf.sign_algorithm,
                          "CertIdentifier": identifier, "DomainMatchCert": matches})  # fmt: skip
        return {"CertificateListModel": {"Count": len(certs), "CertList": {"Cert": certs}}}


def _page_data(row: DomainRow) -> dict[str, Any]:
    origins = [{"Content": o["content"], "Type": o["type"], "Port": int(o.get("port") or 80),
                "Priority": str(o.get("priority") or "20")} for o in json.loads(row.sources)]  # fmt: skip
    return {"DomainName": row.domain_name, "Cname": row.cname, "DomainStatus": "online",
            "GmtCreated": _stamp(row.created_at), "GmtModified": _stamp(row.modified_at),
            "SslProtocol": row.ssl_protocol, "Sandbox": "normal", "Description": "",
            "Sources": {"Source": origins}}  # fmt: skip
