"""The VOD API reads hosting's state through hosting's events only: a free certificate's
Status follows the real ACME order (pebble), and `CertType=cas` refers to hosting's
certificates (issued there, or uploaded there) by id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models
from alibabacloud_vod20170321.client import Client
from cryptography import x509
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting.use_cases import HostingUseCases
from certwatch.platform import dns
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import catch_up, rebuild
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from certwatch.vod import access_keys
from certwatch.vod.authn import Authenticator, RateLimit
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.domains import VodDomains
from certwatch.vod.hosting_views import HOSTING_VIEWS
from certwatch.vod.http_api import HttpServer, VodHttpApi, actions
from tests.support.dns_server import dns_server
from tests.support.hosting import Hosting, Silent
from tests.support.pebble import Pebble
from tests.support.pki import TestPKI

SUFFIX = "cdn.test"
SOURCES = '[{"content":"192.0.2.1","type":"ipaddr"}]'


@pytest.fixture(scope="module")
def zone() -> dict[str, dict[str, object]]:
    return {}


@pytest.fixture(scope="module")
def nameserver(zone: dict[str, dict[str, object]]) -> Iterator[tuple[str, int]]:
    with dns_server(zone) as address:
        yield address


class Vod:
    def __init__(self, pool: AsyncConnectionPool[Any], event_log: EventLog, account_id: str,
                 nameserver: tuple[str, int]) -> None:  # fmt: skip
        self.event_log, self.account_id = event_log, uuid.UUID(account_id)
        self.pool, self.vault = pool, Vault(parse_master_key(new_master_key()))
        self.domains = VodDomains(event_log, self.vault, cname_suffix=SUFFIX, ca_file=None)
        self.info = CertInfo(pool, self.domains, region="cn-shanghai", cname_suffix=SUFFIX,
                             nameservers=[dns.parse_nameserver(f"{nameserver[0]}:{nameserver[1]}")])  # fmt: skip

    async def add(self, name: str, **cert: str) -> None:
        await self.domains.add(self.account_id, {"DomainName": name, "Sources": SOURCES})
        await self.domains.set_certificate(self.account_id, {"DomainName": name, "SSLProtocol": "on", **cert})

    async def describe(self, name: str) -> dict[str, str]:
        await catch_up(self.event_log, HOSTING_VIEWS)
        (info,) = (await self.info.describe(self.account_id, {"DomainName": name}))["CertInfos"]["CertInfo"]
        return info  # type: ignore[no-any-return]


@pytest.fixture
def vod(pool: AsyncConnectionPool[Any], event_log: EventLog, h: Hosting, nameserver: tuple[str, int]) -> Vod:
    return Vod(pool, event_log, h.account_id, nameserver)


def _name(zone: dict[str, dict[str, object]]) -> str:
    name = f"v{uuid.uuid4().hex[:10]}.example.com"
    zone[name] = {"CNAME": f"{name}.{SUFFIX}"}
    zone[f"{name}.{SUFFIX}"] = {"A": ["192.0.2.20"]}
    return name


async def _events(event_log: EventLog, instance_id: str) -> list[Any]:
    return [decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id))]


async def test_a_free_certificate_follows_the_acme_order_in_hosting(
    vod: Vod, h: Hosting, ca: Pebble, zone: dict[str, dict[str, object]]
) -> None:
    name, other = _name(zone), _name(zone)
    await vod.add(name, CertType="free")
    await vod.add(other, CertType="free")
    assert (await vod.describe(name))["Status"] == ""  # CNAME right, no order in hosting
    _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
    instance_id = instances[0].instance_id
    await h.use_cases.apply(h.account_id, instance_id, [name], "ec256", "Example Co", "ops@example.com",
                            "http-01", "test")  # fmt: skip
    assert (await vod.describe(name))["Status"] == "applying"
    answer, h.orchestrator.solver = h.orchestrator.solver, Silent()  # pebble's validation gets 404
    await h.orchestrator.run_due()
    (failed,) = [e for e in await _events(vod.event_log, instance_id) if isinstance(e, hc.OrderFailed)]
    got = await vod.describe(name)
    assert (got["Status"], got["ServerCertificate"]) == ("failed", "")
    h.orchestrator.solver, h.clock.now = answer, failed.retry_at
    await h.settle()
    (issued,) = [e for e in await _events(vod.event_log, instance_id) if isinstance(e, hc.CertificateIssued)]
    got = await vod.describe(name)
    leaf = x509.load_pem_x509_certificate(issued.certificate.cert_pem.encode())
    assert (got["Status"], got["CertType"], got["DomainCnameStatus"], got["CertDomainName"]) == (
        "success", "free", "ok", name,
    )  # fmt: skip
    assert got["ServerCertificate"] == issued.certificate.cert_pem + issued.certificate.chain_pem
    assert got["CertExpireTime"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    # pebble's CA names no organisation: its common name stands for it.
    assert not leaf.issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    assert got["CertOrg"] == leaf.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert (await vod.describe(other))["Status"] == ""  # another name: not this order's

    # Hosting's certificate is referable by CertType=cas, by its CertId or hosting's own id.
    await vod.add(f"cas.{name}", CertType="cas", CertId=issued.certificate_id)
    cas = await vod.describe(f"cas.{name}")
    assert (cas["CertType"], cas["CertId"], cas["ServerCertificate"]) == ("cas", got["CertId"], got["ServerCertificate"])  # fmt: skip
    listed = await vod.domains.list_certificates(vod.account_id, {})
    (cert,) = listed["CertificateListModel"]["CertList"]["Cert"]
    assert (str(cert["CertId"]), cert["CertIdentifier"]) == (got["CertId"], issued.certificate_id)

    # The same through Alibaba Cloud's own SDK: the free certificate's state, hosting's certificate listed and set by CertId.
    await vod.domains.add(vod.account_id, {"DomainName": f"sdk.{name}", "Sources": SOURCES})
    key = await access_keys.create(vod.pool, vod.vault, vod.account_id)
    authn = Authenticator(vod.pool, vod.vault, RateLimit(100, 100))
    server = HttpServer(
        VodHttpApi(authn, actions(vod.info, vod.domains), region="cn-shanghai"), "127.0.0.1", 0
    )
    await server.start()
    try:
        client = Client(Config(access_key_id=key.access_key_id, access_key_secret=key.access_key_secret,
                               endpoint=f"127.0.0.1:{server.port}", protocol="HTTP"))  # fmt: skip
        body = (await asyncio.to_thread(client.describe_vod_domain_certificate_info,
                                        models.DescribeVodDomainCertificateInfoRequest(domain_name=name))).body  # fmt: skip
        (info,) = body.cert_infos.cert_info
        assert (info.status, info.cert_type, info.cert_id, info.server_certificate) == (
            "success", "free", got["CertId"], got["ServerCertificate"],
        )  # fmt: skip
        listed = (await asyncio.to_thread(client.describe_vod_certificate_list,
                                          models.DescribeVodCertificateListRequest())).body  # fmt: skip
        (sdk_cert,) = listed.certificate_list_model.cert_list.cert
        assert (sdk_cert.cert_id, sdk_cert.cert_identifier) == (int(got["CertId"]), issued.certificate_id)
        await asyncio.to_thread(client.set_vod_domain_sslcertificate, models.SetVodDomainSSLCertificateRequest(
            domain_name=f"sdk.{name}", sslprotocol="on", cert_type="cas", cert_id=sdk_cert.cert_id))  # fmt: skip
        assert (await vod.describe(f"sdk.{name}"))["ServerCertificate"] == got["ServerCertificate"]
    finally:
        await server.close()

    # The view rebuilt from the log equals the live one (each event applied once).
    live = await _view_rows(vod)
    await rebuild(vod.event_log, HOSTING_VIEWS)
    assert await _view_rows(vod) == live


async def _view_rows(vod: Vod) -> list[tuple[Any, ...]]:
    async with vod.event_log.pool.connection() as conn:
        orders = await conn.execute(
            "SELECT * FROM vod_free_orders WHERE account_id = %s ORDER BY 1", (vod.account_id,)
        )
        certs = await conn.execute("SELECT * FROM vod_hosting_certificates WHERE account_id = %s ORDER BY 1", (vod.account_id,))  # fmt: skip
        return [*await orders.fetchall(), *await certs.fetchall()]


async def test_a_certificate_uploaded_to_hosting_is_referable_by_cas(vod: Vod, h: Hosting) -> None:
    with TestPKI(label="Hosting Upload") as pki:
        leaf = pki.leaf("up.example.test")
        # Uploads are verified against the trust store: this PKI's root is trusted here.
        uploads = HostingUseCases(vod.event_log, h.vault, clock=h.clock, ca_file=pki.ca_file)
        row = await uploads.upload(h.account_id, leaf.pem, leaf.key_pem, pki.intermediate.pem, "test")
    await catch_up(vod.event_log, HOSTING_VIEWS)
    (cert,) = (await vod.domains.list_certificates(vod.account_id, {}))["CertificateListModel"]["CertList"][
        "Cert"
    ]
    await vod.add("up.example.test", CertType="cas", CertId=str(cert["CertId"]))
    got = await vod.describe("up.example.test")
    assert (got["CertType"], got["CertDomainName"], got["CertOrg"]) == (
        "cas",
        "up.example.test",
        cert["Issuer"],
    )
    assert got["ServerCertificate"].startswith(leaf.pem.decode())
    # Another account cannot refer to it; once hosting deletes it, it is gone here too.
    assert await vod.domains.certificate(vod.account_id, row.id) is not None
    for other_account_id in (uuid.uuid4(),):
        assert await vod.domains.certificate(other_account_id, row.id) is None
        assert await vod.domains.certificate(other_account_id, str(cert["CertId"])) is None
    await h.use_cases.delete_certificate(h.account_id, row.id, "test")
    await catch_up(vod.event_log, HOSTING_VIEWS)
    assert await vod.domains.certificate(vod.account_id, str(cert["CertId"])) is None
