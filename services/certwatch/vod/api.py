"""The Vod gRPC API: the caller's account's AccessKey pairs for the VOD HTTP endpoint, and
its accelerated domains through the same use cases as the HTTP actions (`domains`,
`cert_info`), with the HTTP parameters' names mapped to these fields.

Every call is scoped to the caller's account (`auth.current()`): another account's key or
domain answers exactly like one that does not exist. A use case's `ApiError` becomes the
platform's error once, here (its Alibaba code first in the message).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import auth
from certwatch.platform.errors import AlreadyExists, InvalidArgument, NotFound
from certwatch.platform.shredding import Vault
from certwatch.v1 import vod_pb2 as pb
from certwatch.v1 import vod_pb2_grpc
from certwatch.vod import access_keys, names
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.domains import DomainRow, VodDomains
from certwatch.vod.errors import ApiError

# HTTP parameter -> the request field it is here
_FIELDS = {"DomainName": "domain_name", "Sources": "sources", "Scope": "scope", "SSLProtocol": "ssl_protocol",
           "CertType": "cert_type", "CertId": "cert_id", "CertName": "cert_name", "SSLPub": "certificate_pem",
           "SSLPri": "private_key_pem", "PageNumber": "page_number", "PageSize": "page_size"}  # fmt: skip


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """A use case's `ApiError` as the platform's error (its Alibaba code first)."""
    try:
        yield
    except ApiError as exc:
        message = f"{exc.code}: {exc.message}"
        if exc.status == 404:
            raise NotFound(message) from None
        if exc.code == "DomainAlreadyExist":
            raise AlreadyExists(message) from None
        field = exc.field or "request"
        raise InvalidArgument([(_FIELDS.get(field, field), message)]) from None


def _sources(origins: Any) -> str:
    return json.dumps([{"content": o.content, "type": o.type, "port": o.port or 80, "priority": o.priority or "20"}
                       for o in origins])  # fmt: skip


def _domain(row: DomainRow) -> pb.VodDomain:
    out = pb.VodDomain(domain_name=row.domain_name, cname=row.cname, ssl_protocol=row.ssl_protocol,
                       cert_type=row.cert_type, cert_id=row.cert_id, cert_name=row.cert_name,
                       sources=[pb.Origin(content=o["content"], type=o["type"], port=int(o.get("port") or 80),
                                          priority=str(o.get("priority") or "20")) for o in json.loads(row.sources)])  # fmt: skip
    out.created_at.FromDatetime(row.created_at)
    out.modified_at.FromDatetime(row.modified_at)
    return out


def _params(**given: object) -> dict[str, str]:
    """The HTTP parameters of a request's set fields."""
    return {name: str(value) for name, value in given.items() if value}


def _info(key: access_keys.KeyInfo) -> pb.AccessKeyInfo:
    out = pb.AccessKeyInfo(access_key_id=key.access_key_id)
    out.created_at.FromDatetime(key.created_at)
    if key.revoked_at is not None:
        out.revoked_at.FromDatetime(key.revoked_at)
    return out


class VodApi(vod_pb2_grpc.VodServicer):
    def __init__(
        self, pool: AsyncConnectionPool[Any], vault: Vault, domains: VodDomains, info: CertInfo
    ) -> None:
        self._pool, self._vault, self._domains, self._info = pool, vault, domains, info

    async def _row(self, name: str) -> pb.VodDomain:
        row = await self._domains.row(auth.current().account_id, name)
        if row is None:  # removed again between the command and this read
            raise NotFound(f"InvalidDomain.NotFound: The domain {name} does not exist in this account.")
        return _domain(row)

    async def _command(
        self, use_case: Callable[..., Awaitable[Any]], params: Mapping[str, str], **options: Any
    ) -> str:
        """Run one domain command; the normalised name it acted on."""
        with _refused():
            name = names.domain_name(params.get("DomainName"))
            await use_case(auth.current().account_id, {**params, "DomainName": name}, **options)
        return name

    async def AddDomain(self, request: pb.AddVodDomainRequest, context: Any) -> pb.VodDomain:
        params = _params(
            DomainName=request.domain_name, Scope=request.scope, Sources=_sources(request.sources)
        )
        name = await self._command(self._domains.add, params, allow_no_sources=True)
        return await self._row(name)

    async def ListDomains(self, request: pb.ListVodDomainsRequest, context: Any) -> pb.VodDomainList:
        account = auth.current().account_id
        params = _params(
            DomainName=request.domain_name, PageNumber=request.page_number, PageSize=request.page_size
        )
        with _refused():
            page = await self._domains.list_domains(account, params)
        rows = [await self._domains.row(account, d["DomainName"]) for d in page["Domains"]["PageData"]]
        return pb.VodDomainList(domains=[_domain(r) for r in rows if r], total_count=page["TotalCount"])

    async def SetDomainCertificate(
        self, request: pb.SetVodDomainCertificateRequest, context: Any
    ) -> pb.VodDomain:
        params = _params(DomainName=request.domain_name, SSLProtocol=request.ssl_protocol or "on",
                         CertType=request.cert_type, CertId=request.cert_id, CertName=request.cert_name,
                         SSLPub=request.certificate_pem, SSLPri=request.private_key_pem)  # fmt: skip
        name = await self._command(self._domains.set_certificate, params)
        return await self._row(name)

    async def RemoveDomain(
        self, request: pb.RemoveVodDomainRequest, context: Any
    ) -> pb.RemoveVodDomainResponse:
        await self._command(self._domains.delete, _params(DomainName=request.domain_name))
        return pb.RemoveVodDomainResponse()

    async def GetDomainCertificateInfo(
        self, request: pb.GetVodDomainCertificateInfoRequest, context: Any
    ) -> pb.CertInfoList:
        with _refused():
            found = await self._info.describe(
                auth.current().account_id, _params(DomainName=request.domain_name)
            )
        return pb.CertInfoList(cert_infos=[pb.CertInfo(fields=i) for i in found["CertInfos"]["CertInfo"]])

    async def CreateAccessKey(self, request: pb.CreateAccessKeyRequest, context: Any) -> pb.CreatedAccessKey:
        key = await access_keys.create(self._pool, self._vault, auth.current().account_id)
        return pb.CreatedAccessKey(access_key_id=key.access_key_id, access_key_secret=key.access_key_secret)

    async def ListAccessKeys(self, request: pb.ListAccessKeysRequest, context: Any) -> pb.AccessKeyList:
        keys = await access_keys.list_keys(self._pool, auth.current().account_id)
        return pb.AccessKeyList(keys=[_info(k) for k in keys])

    async def RevokeAccessKey(self, request: pb.RevokeAccessKeyRequest, context: Any) -> pb.AccessKeyInfo:
        revoked = await access_keys.revoke(self._pool, auth.current().account_id, request.access_key_id)
        if revoked is None:
            raise NotFound(f"no live AccessKey {request.access_key_id!r} in this account")
        return _info(revoked)


def registration(api: VodApi) -> tuple[Any, Any, str]:
    return (vod_pb2_grpc.add_VodServicer_to_server, api, "certwatch.v1.Vod")
