"""The VOD API called by Alibaba Cloud's official SDK, unchanged, and by raw HTTP: real
PostgreSQL, a domain monitored through the real classifier pipeline, a real certificate."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import orjson
import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_vod20170321 import models
from alibabacloud_vod20170321.client import Client
from cryptography.hazmat.primitives.serialization import Encoding
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import domain as d
from certwatch.platform import auth
from certwatch.platform.certificates import StoredCertificate, put_certificates
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up
from certwatch.platform.shredding import Vault
from certwatch.prober.cert_facts import parse_der
from certwatch.vod import access_keys
from certwatch.vod.access_keys import AccessKey
from certwatch.vod.authn import Authenticator, RateLimit
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.domains import VodDomains
from certwatch.vod.http_api import HttpServer, VodHttpApi, actions
from certwatch.vod.observed_hosts import OBSERVED_HOSTS
from tests.support.observed import observe
from tests.support.pki import TestPKI, issue
from tests.support.probe_results import result, served

HOST = "www.example.test"
START = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)


@dataclass
class Setup:
    pool: AsyncConnectionPool[Any]
    vault: Vault
    account_id: uuid.UUID
    key: AccessKey
    leaf_pem: str
    leaf_sha256: str

    async def serve(
        self, *, rate: float = 1000, burst: int = 1000, clock: Callable[[], datetime] | None = None
    ) -> HttpServer:
        authn = Authenticator(self.pool, self.vault, RateLimit(rate, burst),
                              **({"clock": clock} if clock else {}))  # fmt: skip
        domains = VodDomains(EventLog(self.pool), self.vault, cname_suffix=None, ca_file=None)
        info = CertInfo(self.pool, domains, region="cn-shanghai", cname_suffix=None, nameservers=())
        server = HttpServer(VodHttpApi(authn, actions(info, domains), region="cn-shanghai"), "127.0.0.1", 0)
        await server.start()
        return server


async def monitor(event_log: EventLog, account_id: uuid.UUID, *chain: Any) -> None:
    """Add and enable a domain and record a probe of it, through the classifier pipeline."""
    domain_id = str(uuid.uuid4())
    base = {"domain_id": domain_id, "account_id": str(account_id), "host": HOST, "port": 443}
    await event_log.append(d.stream_id(domain_id), [
        NewEvent(d.DOMAIN_ADDED, {**base, "contact_ids": [], "added_at": START.isoformat()}),
        NewEvent(d.MONITORING_ENABLED, {**base, "period_start": "2026-09-01",
                                        "service_ends_on": "2027-08-31", "generation": 1,
                                        "enabled_at": START.isoformat()}),
    ], expected_version=0)  # fmt: skip
    probe = result(served("192.0.2.10", *chain), at=START)
    await observe(event_log, domain_id=domain_id, account_id=str(account_id), result=probe, first_check=True)
    await catch_up(event_log, OBSERVED_HOSTS)


@pytest.fixture
async def setup(pool: AsyncConnectionPool[Any], event_log: EventLog) -> AsyncIterator[Setup]:
    with TestPKI(label="Vod Test") as pki:
        leaf = issue(HOST, issuer=pki.intermediate, dns=(HOST, "*.example.test"),
                     not_before=START, not_after=START + timedelta(days=90))  # fmt: skip
        der = leaf.cert.public_bytes(Encoding.DER)
        leaf_facts = parse_der(der).facts
        inter = parse_der(pki.intermediate.cert.public_bytes(Encoding.DER)).facts
        account_id, _ = await auth.create_account(pool, "vod-acme")
        await monitor(event_log, account_id, leaf_facts, inter)
        # The DER as the prober will store it in the platform store (it keeps facts only today).
        async with pool.connection() as conn:
            await put_certificates(conn, [StoredCertificate(leaf_facts.sha256, leaf_facts.to_dict(), der)])
        vault = Vault(os.urandom(32))
        key = await access_keys.create(pool, vault, account_id)
        yield Setup(pool, vault, account_id, key, leaf.pem.decode(), leaf_facts.sha256)


def sdk(server: HttpServer, key: AccessKey, *, v2: bool = False, secret: str | None = None) -> Client:
    config = Config(access_key_id=key.access_key_id, access_key_secret=secret or key.access_key_secret,
                    endpoint=f"127.0.0.1:{server.port}", protocol="HTTP")  # fmt: skip
    if v2:
        config.signature_algorithm = "v2"
    return Client(config)


async def describe(client: Client, domain: str | None = HOST) -> Any:
    request = models.DescribeVodDomainCertificateInfoRequest(domain_name=domain)
    return (await asyncio.to_thread(client.describe_vod_domain_certificate_info, request)).body


async def sdk_error(client: Client, domain: str | None = HOST) -> Any:
    with pytest.raises(ClientException) as err:
        await describe(client, domain)
    return err.value


@pytest.mark.parametrize("v2", [False, True], ids=["ACS3-HMAC-SHA256", "RPC-v1-HMAC-SHA1"])
async def test_the_official_sdk_gets_every_field_from_real_state(setup: Setup, v2: bool) -> None:
    server = await setup.serve()
    try:
        body = await describe(sdk(server, setup.key, v2=v2))
    finally:
        await server.close()
    assert len(body.request_id) == 36
    [info] = body.cert_infos.cert_info
    assert info.to_map() == {
        "CertDomainName": HOST, "CertExpireTime": "2026-11-30T08:30:00Z", "CertId": setup.leaf_sha256,
        "CertLife": "3 months", "CertName": HOST, "CertOrg": "Vod Test Issuing",
        "CertRegion": "cn-shanghai", "CertStartTime": "2026-09-01T08:30:00Z", "CertType": "upload",
        "CertUpdateTime": "2026-09-01T08:30:00Z", "DomainCnameStatus": "", "DomainName": HOST,
        "ServerCertificate": setup.leaf_pem, "ServerCertificateStatus": "on", "Status": "",
    }  # fmt: skip


@pytest.mark.parametrize("v2", [False, True], ids=["ACS3-HMAC-SHA256", "RPC-v1-HMAC-SHA1"])
async def test_the_sdk_raises_its_own_exceptions_with_the_codes(setup: Setup, v2: bool) -> None:
    other_account, _ = await auth.create_account(setup.pool, "vod-other")
    other_key = await access_keys.create(setup.pool, setup.vault, other_account)
    revoked = await access_keys.create(setup.pool, setup.vault, setup.account_id)
    assert await access_keys.revoke(setup.pool, setup.account_id, revoked.access_key_id)
    server = await setup.serve()
    try:
        cases = [
            (sdk(server, setup.key, v2=v2, secret="wrong"), HOST, 400, "SignatureDoesNotMatch"),
            (sdk(server, AccessKey("CWnosuchkey", "x"), v2=v2), HOST, 404, "InvalidAccessKeyId.NotFound"),
            (sdk(server, revoked, v2=v2), HOST, 400, "InvalidAccessKeyId.Inactive"),
            (sdk(server, other_key, v2=v2), HOST, 404, "InvalidDomain.NotFound"),
            (sdk(server, setup.key, v2=v2), "nosuch.example.test", 404, "InvalidDomain.NotFound"),
            (sdk(server, setup.key, v2=v2), None, 400, "MissingDomainName"),
            (sdk(server, setup.key, v2=v2), "bad_name..example", 400, "InvalidDomainName.Malformed"),
        ]
        for client, domain, status, code in cases:
            error = await sdk_error(client, domain)
            assert (error.status_code, error.code) == (status, code), error.message
            assert error.data["HostId"] == f"127.0.0.1:{server.port}"
            assert error.data["Recommend"] and error.request_id == error.data["RequestId"]
    finally:
        await server.close()


async def test_a_clock_more_than_15_minutes_off_is_refused(setup: Setup) -> None:
    server = await setup.serve(clock=lambda: datetime.now(UTC) + timedelta(minutes=16))
    try:
        for v2 in (False, True):
            error = await sdk_error(sdk(server, setup.key, v2=v2))
            assert error.code == "InvalidTimeStamp.Expired"
    finally:
        await server.close()


async def test_throttling_answers_retry_after_which_the_sdk_raises_as_throttling(setup: Setup) -> None:
    server = await setup.serve(rate=0.5, burst=2)
    try:
        client = sdk(server, setup.key)
        await describe(client)
        await describe(client)
        with pytest.raises(ThrottlingException) as err:
            await describe(client)
        assert err.value.code == "Throttling" and 0 < err.value.retry_after <= 2001
    finally:
        await server.close()


def signed_v1(key: AccessKey, method: str, params: dict[str, str], *, at: datetime | None = None,
              nonce: str | None = None) -> dict[str, str]:  # fmt: skip
    """RPC v1 parameters signed by the SDK's own signer (Utils.get_rpcsignature)."""
    full = {"Version": "2017-03-21", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
            "SignatureNonce": nonce or uuid.uuid4().hex, "AccessKeyId": key.access_key_id,
            "Timestamp": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), **params}  # fmt: skip
    return {**full, "Signature": Utils.get_rpcsignature(full, method, key.access_key_secret)}


def signed_acs3(key: AccessKey, port: int, params: dict[str, str], nonce: str) -> dict[str, str]:
    """ACS3-HMAC-SHA256 headers for a POST with `params` in the query, by the SDK's own signer."""
    headers = {"host": f"127.0.0.1:{port}", "x-acs-action": "DescribeVodDomainCertificateInfo",
               "x-acs-version": "2017-03-21", "x-acs-signature-nonce": nonce,
               "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()}  # fmt: skip
    request = SimpleNamespace(method="POST", pathname="/", query=params, headers=headers)
    payload = headers["x-acs-content-sha256"]
    authorization = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload,
                                            key.access_key_id, key.access_key_secret)  # fmt: skip
    return {**headers, "authorization": authorization}


async def raw(server: HttpServer, method: str, target: str, body: str = "",
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    def call() -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request(method, target, body=body.encode(), headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    return await asyncio.to_thread(call)


DESCRIBE = {"Action": "DescribeVodDomainCertificateInfo", "DomainName": HOST}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_raw_get_form_post_and_xml(setup: Setup) -> None:
    server = await setup.serve()
    try:
        status, _, body = await raw(server, "GET", "/?" + urlencode(signed_v1(setup.key, "GET", DESCRIBE)))
        assert status == 200 and orjson.loads(body)["CertInfos"]["CertInfo"][0]["CertId"] == setup.leaf_sha256
        form = urlencode(signed_v1(setup.key, "POST", {**DESCRIBE, "DomainName": HOST.upper()}))
        status, _, body = await raw(server, "POST", "/", form, FORM)
        assert status == 200 and orjson.loads(body)["CertInfos"]["CertInfo"][0]["DomainName"] == HOST
        query = urlencode(signed_v1(setup.key, "GET", {**DESCRIBE, "Format": "XML"}))
        status, headers, body = await raw(server, "GET", "/?" + query)
        root = ElementTree.fromstring(body)
        assert status == 200 and headers["content-type"].startswith("text/xml")
        assert root.tag == "DescribeVodDomainCertificateInfoResponse"
        assert root.findtext("CertInfos/CertInfo/CertExpireTime") == "2026-11-30T08:30:00Z"
        assert root.findtext("CertInfos/CertInfo/ServerCertificate") == setup.leaf_pem
        query = urlencode(signed_v1(setup.key, "GET", {**DESCRIBE, "Format": "XML", "DomainName": ""}))
        status, _, body = await raw(server, "GET", "/?" + query)
        error = ElementTree.fromstring(body)
        assert (status, error.tag, error.findtext("Code")) == (400, "Error", "MissingDomainName")
    finally:
        await server.close()


async def test_raw_refusals(setup: Setup) -> None:
    server = await setup.serve()

    async def code(method: str, target: str, body: str = "", headers: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
        status, _, data = await raw(server, method, target, body, headers)
        return status, orjson.loads(data).get("Code", "")

    try:
        once = "/?" + urlencode(signed_v1(setup.key, "GET", DESCRIBE, nonce="n-1"))
        assert (await code("GET", once))[0] == 200
        assert await code("GET", once) == (400, "SignatureNonceUsed")
        acs3 = signed_acs3(setup.key, server.port, {"DomainName": HOST}, "n-2")
        assert (await code("POST", f"/?DomainName={HOST}", "", acs3))[0] == 200
        assert await code("POST", f"/?DomainName={HOST}", "", acs3) == (400, "SignatureNonceUsed")
        old = signed_v1(setup.key, "GET", DESCRIBE, at=datetime.now(UTC) - timedelta(minutes=16))
        assert await code("GET", "/?" + urlencode(old)) == (400, "InvalidTimeStamp.Expired")
        tampered = {**signed_v1(setup.key, "GET", DESCRIBE), "DomainName": "other.example.test"}
        assert await code("GET", "/?" + urlencode(tampered)) == (400, "SignatureDoesNotMatch")
        signed_post = signed_v1(setup.key, "GET", DESCRIBE)  # signed for GET, sent as POST
        assert await code("POST", "/", urlencode(signed_post), FORM) == (400, "SignatureDoesNotMatch")
        assert await code("GET", "/?" + urlencode(DESCRIBE)) == (400, "IncompleteSignature")
        unknown = signed_v1(setup.key, "GET", {**DESCRIBE, "Action": "DescribeNothing"})
        assert await code("GET", "/?" + urlencode(unknown)) == (404, "InvalidAction.NotFound")
        not_here = signed_v1(
            setup.key, "GET", {**DESCRIBE, "Action": "GetPlayInfo"}
        )  # a VOD action, not served
        assert await code("GET", "/?" + urlencode(not_here)) == (400, "UnsupportedOperation")
        version = signed_v1(setup.key, "GET", {**DESCRIBE, "Version": "2014-01-01"})
        assert await code("GET", "/?" + urlencode(version)) == (400, "NoSuchVersion")
        no_action = signed_v1(setup.key, "GET", {"DomainName": HOST})
        assert await code("GET", "/?" + urlencode(no_action)) == (400, "MissingParameter")
        twice = "/?" + urlencode(signed_v1(setup.key, "GET", DESCRIBE)) + "&DomainName=x.example"
        assert await code("GET", twice) == (400, "InvalidParameter")
        assert await code("DELETE", "/") == (400, "UnsupportedHTTPMethod")
        chunked = {"transfer-encoding": "chunked"}
        status, _, data = await raw(server, "POST", "/", "", chunked)
        assert status == 400 and b"Transfer-Encoding" in data and b"Traceback" not in data
    finally:
        await server.close()
