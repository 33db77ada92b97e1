"""Accelerated domains and their certificates through every action, with Alibaba Cloud's
SDKs (current, both signatures, and legacy) and the CLI, against the stack's vod service:
certificates from a real PKI, free-certificate Status from a real DNS server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models
from alibabacloud_vod20170321.client import Client
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkvod.request.v20170321 import (
    AddVodDomainRequest,
    DeleteVodDomainRequest,
    DescribeVodCertificateListRequest,
    DescribeVodDomainCertificateInfoRequest,
    DescribeVodUserDomainsRequest,
    SetVodDomainSSLCertificateRequest,
)

from certwatch.cli.main import main
from certwatch.platform import db
from certwatch.platform.config import Settings
from certwatch.v1 import vod_pb2, vod_pb2_grpc
from tests.support.dns_server import dns_server
from tests.support.pki import TestPKI
from tests.support.stack import Stack, new_account, running_stack

SUFFIX = "cdn.test"
SOURCES = json.dumps([{"content": "192.0.2.7", "type": "ipaddr", "port": 80, "priority": "20"}])
ZONE = {
    "free-ok.test": {"CNAME": f"free-ok.test.{SUFFIX}"},
    f"free-ok.test.{SUFFIX}": {"A": ["192.0.2.20"]},
    "free-elsewhere.test": {"CNAME": "edge.other-cdn.test"},
    "edge.other-cdn.test": {"A": ["192.0.2.30"]},
}  # free-pending.test is not in it: NXDOMAIN, its CNAME not visible yet


@dataclass
class Api:
    endpoint: str
    key: dict[str, str]
    v2: bool = False  # the official SDK's scheme when a call names none: RPC v1, else ACS3

    def sdk(self, *, v2: bool | None = None) -> Client:
        config = Config(access_key_id=self.key["AccessKeyId"], access_key_secret=self.key["AccessKeySecret"],
                        endpoint=self.endpoint, protocol="HTTP")  # fmt: skip
        if self.v2 if v2 is None else v2:
            config.signature_algorithm = "v2"
        return Client(config)

    async def call(self, method: str, request: Any, *, v2: bool | None = None) -> Any:
        return (await asyncio.to_thread(getattr(self.sdk(v2=v2), method), request)).body

    async def refused(self, method: str, request: Any, *, v2: bool | None = None) -> tuple[int, str]:
        with pytest.raises(ClientException) as err:
            await self.call(method, request, v2=v2)
        return err.value.status_code, err.value.code

    async def legacy(self, request_module: Any, **params: object) -> dict[str, Any]:
        return await asyncio.to_thread(self._legacy, request_module, **params)

    def _legacy(self, request_module: Any, **params: object) -> dict[str, Any]:
        """One call through aliyun-python-sdk-core + aliyun-python-sdk-vod."""
        client = AcsClient(
            self.key["AccessKeyId"], self.key["AccessKeySecret"], "cn-shanghai", auto_retry=False
        )
        request = getattr(request_module, request_module.__name__.rsplit(".", 1)[-1])()
        for name, value in params.items():
            getattr(request, f"set_{name}")(value)
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("http")
        return dict(json.loads(client.do_action_with_exception(request)))

    async def legacy_refused(self, request_module: Any, **params: object) -> tuple[int, str]:
        with pytest.raises(ServerException) as err:
            await self.legacy(request_module, **params)
        return err.value.get_http_status(), err.value.get_error_code()

    async def info(self, domain: str, *, v2: bool | None = None) -> dict[str, str]:
        body = await self.call("describe_vod_domain_certificate_info",
                               models.DescribeVodDomainCertificateInfoRequest(domain_name=domain), v2=v2)  # fmt: skip
        [info] = body.cert_infos.cert_info
        return dict(info.to_map())


@pytest.fixture
def dns() -> Iterator[tuple[str, int]]:
    with dns_server(ZONE) as address:
        yield address


async def _key(stack: Stack, api_key: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    server = f"127.0.0.1:{stack.services['vod'].port}"
    code = await asyncio.to_thread(
        main, ["vod", "keys", "create", "--json", "--api-key", api_key, "--server", server]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return dict(json.loads(out))


async def _sealed_at_rest(stack: Stack, key_pem: bytes) -> None:
    """No line of the private key is stored in clear: not in the event log, not in a view."""
    body = key_pem.decode().splitlines()[1]
    pool = await db.open_pool(stack.settings.database_url)
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM events WHERE data::text LIKE %s),"
                " (SELECT count(*) FROM vod_uploaded_certificates WHERE row_to_json(vod_uploaded_certificates)::text LIKE %s),"
                " (SELECT count(*) FROM vod_uploaded_certificates WHERE sealed_private_key <> '')",
                (f"%{body[:40]}%", f"%{body[:40]}%"),
            )
            assert await cur.fetchone() == (0, 0, 1)
    finally:
        await pool.close()


@pytest.mark.parametrize("v2", [False, True], ids=["ACS3-HMAC-SHA256", "RPC-v1-HMAC-SHA1"])
async def test_every_domain_action_with_every_sdk(
    settings: Settings, pki: TestPKI, dns: tuple[str, int], capsys: pytest.CaptureFixture[str], v2: bool
) -> None:
    leaf = pki.leaf("www.up.test", dns=("www.up.test", "www.cas.test"))
    chain_pem = (pki.intermediate.pem + leaf.pem).decode()  # out of order: the server puts the leaf first
    stack_settings = replace(settings, dns_servers=(f"{dns[0]}:{dns[1]}",), vod_cname_suffix=SUFFIX)
    async with running_stack(stack_settings, ("vod",)) as stack:
        api = Api(stack.vod_endpoint, await _key(stack, stack.api_key, capsys), v2=v2)
        for name in ("www.up.test", "www.cas.test", "free-ok.test", "free-elsewhere.test", "free-pending.test",
                     "*.wild.test", "under_score.test"):  # fmt: skip
            await api.call("add_vod_domain", models.AddVodDomainRequest(domain_name=name, sources=SOURCES))
        assert await api.refused("add_vod_domain", models.AddVodDomainRequest(domain_name="www.up.test", sources=SOURCES)) == (409, "DomainAlreadyExist")  # fmt: skip
        assert await api.refused("add_vod_domain", models.AddVodDomainRequest(domain_name="x.test"), v2=not v2) == (400, "MissingParameter")  # fmt: skip
        assert await api.legacy_refused(AddVodDomainRequest, DomainName="x.test", Sources="[{}]") == (400, "InvalidParameter")  # fmt: skip

        # Upload: the key must match, the chain must verify for the domain against CERTWATCH_CA_FILE.
        def upload_of(pub: str, pri: str) -> models.SetVodDomainCertificateRequest:
            return models.SetVodDomainCertificateRequest(
                domain_name="www.up.test", sslprotocol="on", sslpub=pub, sslpri=pri
            )

        upload = upload_of(chain_pem, leaf.key_pem.decode())
        wrong_key = upload_of(chain_pem, pki.intermediate.key_pem.decode())
        assert await api.refused("set_vod_domain_certificate", wrong_key) == (
            400,
            "InvalidCertificate.KeyMismatch",
        )
        with TestPKI(label="Elsewhere") as other_pki:
            stranger = other_pki.leaf("www.up.test")
            untrusted = upload_of(stranger.pem.decode(), stranger.key_pem.decode())
            assert await api.refused("set_vod_domain_certificate", untrusted, v2=not v2) == (
                400,
                "InvalidCertificate",
            )
        await api.call("set_vod_domain_certificate", upload)
        await _sealed_at_rest(stack, leaf.key_pem)
        info = await api.info("www.up.test")
        assert info["ServerCertificate"] == (leaf.pem + pki.intermediate.pem).decode()  # ordered, leaf first
        assert {k: info[k] for k in ("CertType", "CertName", "CertOrg", "CertDomainName", "ServerCertificateStatus",
                                     "Status", "CertLife")} == {
            "CertType": "upload", "CertName": "www.up.test", "CertOrg": "certwatch Test Issuing",
            "CertDomainName": "www.up.test", "ServerCertificateStatus": "on", "Status": "", "CertLife": "3 months",
        }  # fmt: skip
        assert info == await api.info("www.up.test", v2=not v2)
        old = await api.legacy(DescribeVodDomainCertificateInfoRequest, DomainName="www.up.test")
        assert info == old["CertInfos"]["CertInfo"][0]

        listed = await api.call("describe_vod_certificate_list", models.DescribeVodCertificateListRequest())
        [cert] = listed.certificate_list_model.cert_list.cert
        assert cert.cert_id == int(info["CertId"]) and cert.common == "www.up.test"
        assert (
            cert.issuer == "certwatch Test Issuing" and cert.fingerprint and cert.end_time > cert.create_time
        )
        legacy_list = await api.legacy(DescribeVodCertificateListRequest, DomainName="www.cas.test")
        assert legacy_list["CertificateListModel"]["CertList"]["Cert"][0]["DomainMatchCert"] is True

        # cas: the uploaded certificate by its id, on another domain it covers.
        await api.legacy(SetVodDomainSSLCertificateRequest, DomainName="www.cas.test", SSLProtocol="on",
                         CertType="cas", CertId=cert.cert_id)  # fmt: skip
        cas = await api.info("www.cas.test")
        assert (cas["CertType"], cas["CertId"], cas["CertDomainName"]) == (
            "cas",
            info["CertId"],
            "www.cas.test",
        )
        missing_cert = models.SetVodDomainSSLCertificateRequest(domain_name="www.cas.test", sslprotocol="on",
                                                                cert_type="cas", cert_id=12345)  # fmt: skip
        assert await api.refused("set_vod_domain_sslcertificate", missing_cert) == (
            404,
            "InvalidCertificate.NotFound",
        )

        # free: Status from the name and from DNS; the CNAME right, no order to report yet (hosting).
        statuses = {}
        for name in (
            "free-ok.test",
            "free-elsewhere.test",
            "free-pending.test",
            "*.wild.test",
            "under_score.test",
        ):
            await api.call("set_vod_domain_sslcertificate", models.SetVodDomainSSLCertificateRequest(
                domain_name=name, sslprotocol="on", cert_type="free"))  # fmt: skip
            got = await api.info(name)
            statuses[name] = (got["CertType"], got["Status"], got["DomainCnameStatus"])
        assert statuses == {
            "free-ok.test": ("free", "", "ok"), "free-elsewhere.test": ("free", "cname_error", "cname_error"),
            "free-pending.test": ("free", "checking", "checking"), "*.wild.test": ("free", "unsupport_wildcard", ""),
            "under_score.test": ("free", "domain_invalid", ""),
        }  # fmt: skip

        # SSL off: no certificate.
        off = models.SetVodDomainSSLCertificateRequest(domain_name="www.cas.test", sslprotocol="off")
        await api.call("set_vod_domain_sslcertificate", off)
        assert (await api.info("www.cas.test"))["ServerCertificateStatus"] == "off"

        page = await api.call(
            "describe_vod_user_domains", models.DescribeVodUserDomainsRequest(page_size=5, page_number=2)
        )
        assert page.total_count == 7 and [d.domain_name for d in page.domains.page_data] == [
            "*.wild.test",
            "under_score.test",
        ]
        one = page.domains.page_data[0]
        assert (
            one.cname == f"wild.test.{SUFFIX}"
            and one.domain_status == "online"
            and one.sources.source[0].port == 80
        )
        found = await api.legacy(
            DescribeVodUserDomainsRequest, DomainName="free-", DomainSearchType="pre_match"
        )
        assert [d["DomainName"] for d in found["Domains"]["PageData"]] == ["free-ok.test", "free-elsewhere.test", "free-pending.test"]  # fmt: skip

        # Another account sees none of it.
        _, other_api_key = await new_account(stack.settings.database_url, "vod-other")
        other = Api(stack.vod_endpoint, await _key(stack, other_api_key, capsys))
        assert await other.refused("describe_vod_domain_certificate_info", models.DescribeVodDomainCertificateInfoRequest(domain_name="www.up.test")) == (404, "InvalidDomain.NotFound")  # fmt: skip
        assert await other.legacy_refused(DeleteVodDomainRequest, DomainName="www.up.test") == (
            404,
            "InvalidDomain.NotFound",
        )
        assert (
            await other.call("describe_vod_user_domains", models.DescribeVodUserDomainsRequest())
        ).total_count == 0

        await api.call("delete_vod_domain", models.DeleteVodDomainRequest(domain_name="www.up.test"))
        assert await api.refused("delete_vod_domain", models.DeleteVodDomainRequest(domain_name="www.up.test")) == (404, "InvalidDomain.NotFound")  # fmt: skip
        assert await api.legacy_refused(DescribeVodDomainCertificateInfoRequest, DomainName="www.up.test") == (404, "InvalidDomain.NotFound")  # fmt: skip
        # Added again, it starts without a certificate.
        await api.call(
            "add_vod_domain", models.AddVodDomainRequest(domain_name="www.up.test", sources=SOURCES)
        )
        assert (await api.info("www.up.test"))["ServerCertificateStatus"] == "off"


async def _grpc_info(stack: Stack, cert_id: str) -> None:
    """GetDomainCertificateInfo: the HTTP action's answer over gRPC, scoped to the account."""
    _, other_api_key = await new_account(stack.settings.database_url, "vod-grpc-other")
    async with stack.channel("vod") as channel:
        vod = vod_pb2_grpc.VodStub(channel)
        request = vod_pb2.GetVodDomainCertificateInfoRequest(domain_name="CLI.vod.test")
        [info] = (await vod.GetDomainCertificateInfo(request, metadata=stack.metadata)).cert_infos
        fields = info.fields
        assert (fields["CertType"], fields["CertId"], fields["DomainName"]) == (
            "upload",
            cert_id,
            "cli.vod.test",
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await vod.GetDomainCertificateInfo(
                request, metadata=(("authorization", f"Bearer {other_api_key}"),)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "InvalidDomain.NotFound" in (
            err.value.details() or ""
        )


async def test_the_cli_manages_domains_and_certificates(
    settings: Settings, pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = pki.leaf("cli.vod.test")
    cert_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert_file.write_bytes(leaf.pem + pki.intermediate.pem)
    key_file.write_bytes(leaf.key_pem)
    async with running_stack(settings, ("vod",)) as stack:
        server = f"127.0.0.1:{stack.services['vod'].port}"

        async def cli(*argv: str) -> tuple[int, str, str]:
            code = await asyncio.to_thread(
                main, ["vod", "domains", *argv, "--api-key", stack.api_key, "--server", server]
            )
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        run: Callable[..., Any] = cli
        assert (await run("add", "cli.vod.test", "--origin", "192.0.2.9"))[0] == 0
        code, _, err = await run("add", "cli.vod.test")
        assert code == 2 and "DomainAlreadyExist" in err
        code, _, err = await run(
            "set-cert", "cli.vod.test", "--cert-type", "upload", "--cert", str(cert_file)
        )
        assert code == 2 and "--key FILE" in err
        code, _, err = await run("set-cert", "cli.vod.test", "--cert-type", "upload", "--cert", str(cert_file),
                                 "--key", str(cert_file))  # fmt: skip
        assert code == 2 and "private_key_pem" in err
        code, out, _ = await run("set-cert", "cli.vod.test", "--cert-type", "upload", "--cert", str(cert_file),
                                 "--key", str(key_file), "--json")  # fmt: skip
        uploaded = json.loads(out)
        assert code == 0 and uploaded["cert_type"] == "upload" and uploaded["cert_id"].isdigit()
        await _grpc_info(stack, uploaded["cert_id"])
        code, out, _ = await run(
            "set-cert", "cli.vod.test", "--cert-type", "cas", "--cert-id", uploaded["cert_id"]
        )
        assert code == 0 and "cas" in out
        code, _, err = await run("set-cert", "cli.vod.test", "--cert-type", "cas", "--cert-id", "1")
        assert code == 2 and "InvalidCertificate.NotFound" in err
        code, out, _ = await run("set-cert", "cli.vod.test", "--cert-type", "free")
        assert code == 0 and "free" in out
        code, out, _ = await run("list")
        assert code == 0 and out.splitlines()[0].split() == [
            "DOMAIN",
            "CNAME",
            "SSL",
            "CERT",
            "TYPE",
            "CERT",
            "ID",
            "ORIGINS",
        ]
        assert "cli.vod.test" in out and "192.0.2.9" in out
        assert (await run("remove", "cli.vod.test"))[0] == 0
        code, _, err = await run("remove", "cli.vod.test")
        assert code == 2 and "InvalidDomain.NotFound" in err
        code, out, _ = await run("list", "--json")
        assert json.loads(out) == []
