"""The VOD certificate API as a user meets it: the whole stack serving it on its own free
port, a key pair from `certwatch vod keys create`, a domain monitored for real (a TLS
server probed, classified), and Alibaba Cloud's own SDKs, current and legacy, unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models
from alibabacloud_vod20170321.client import Client
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.utils import parameter_helper
from aliyunsdkvod.request.v20170321.DescribeVodDomainCertificateInfoRequest import (
    DescribeVodDomainCertificateInfoRequest,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from darabonba.runtime import ExtendsParameters, RuntimeOptions

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from tests.support.pki import TestPKI
from tests.support.stack import Stack, new_account, running_stack, wait_for
from tests.support.tls_server import server_context, tls_server

HOST = "vod.test"


def sdk(endpoint: str, key: dict[str, str], *, v2: bool = False, secret: str | None = None) -> Client:
    config = Config(access_key_id=key["AccessKeyId"], access_key_secret=secret or key["AccessKeySecret"],
                    endpoint=endpoint, protocol="HTTP")  # fmt: skip
    if v2:
        config.signature_algorithm = "v2"
    return Client(config)


def legacy(endpoint: str, key: dict[str, str], *, region: str = "cn-shanghai", secret: str | None = None,
           domain: str = HOST) -> dict[str, Any]:  # fmt: skip
    """One call through aliyun-python-sdk-core + aliyun-python-sdk-vod (RPC v1, RegionId sent)."""
    client = AcsClient(key["AccessKeyId"], secret or key["AccessKeySecret"], region, auto_retry=False)
    request = DescribeVodDomainCertificateInfoRequest()
    request.set_DomainName(domain)
    request.set_endpoint(endpoint)
    request.set_protocol_type("http")
    return dict(json.loads(client.do_action_with_exception(request)))


async def describe(client: Client, domain: str = HOST, **extends: dict[str, str]) -> Any:
    """`extends`: headers or queries the SDK itself adds to the request and signs."""
    request = models.DescribeVodDomainCertificateInfoRequest(domain_name=domain)
    runtime = RuntimeOptions(extends_parameters=ExtendsParameters(**extends))
    call = client.describe_vod_domain_certificate_info_with_options
    return (await asyncio.to_thread(call, request, runtime)).body


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def sdk_code(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientException) as err:
        await call()
    return err.value.status_code, err.value.code


async def legacy_code(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ServerException) as err:
        await asyncio.to_thread(call)
    return err.value.get_http_status(), err.value.get_error_code()


async def test_keys_from_the_cli_and_every_sdk_against_real_state(
    settings: Settings, pki: TestPKI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    leaf = pki.leaf(HOST, dns=(HOST, f"*.{HOST}"), not_before=start, not_after=start + timedelta(days=365))
    with tls_server(server_context(*pki.server_files(leaf))) as port:
        async with running_stack(replace(settings, resolve_overrides=(f"{HOST}:{port}:127.0.0.1",))) as stack:

            async def cli(*argv: str, service: str, key: str | None = None) -> tuple[int, str, str]:
                server = f"127.0.0.1:{stack.services[service].port}"
                args = [*argv, "--api-key", key or stack.api_key, "--server", server]
                code = await asyncio.to_thread(main, args)
                captured = capsys.readouterr()
                return code, captured.out, captured.err

            code, out, err = await cli("domains", "add", f"{HOST}:{port}", "--enable", service="inventory")
            assert code == 0, out + err
            code, out, err = await cli("vod", "keys", "create", "--json", service="vod")
            assert code == 0, err
            key = json.loads(out)
            assert set(key) == {"AccessKeyId", "AccessKeySecret"}
            endpoint = stack.vod_endpoint
            assert endpoint != "127.0.0.1:8080"

            async def observed() -> Any:
                body = await describe(sdk(endpoint, key))
                return body if body.cert_infos.cert_info[0].cert_id else None

            body = await wait_for(observed, timeout=30)
            [info] = body.cert_infos.cert_info
            expected = {
                "CertDomainName": HOST, "CertExpireTime": (start + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "CertLife": "1 year", "CertName": HOST, "CertOrg": "certwatch Test Issuing",
                "CertRegion": "cn-shanghai", "CertStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "CertType": "upload", "DomainCnameStatus": "", "DomainName": HOST,
                "ServerCertificateStatus": "on", "Status": "",
            }  # fmt: skip
            got = info.to_map()
            assert {k: got[k] for k in expected} == expected
            assert len(got["CertId"]) == 64 and got["CertUpdateTime"].endswith("Z")
            # The certificate as served: the prober stored its DER in the platform's store.
            served = x509.load_pem_x509_certificate(got["ServerCertificate"].encode())
            assert served.public_bytes(Encoding.DER) == leaf.cert.public_bytes(Encoding.DER)
            v2 = (await describe(sdk(endpoint, key, v2=True))).cert_infos.cert_info[0].to_map()
            old = (await asyncio.to_thread(legacy, endpoint, key))["CertInfos"]["CertInfo"][0]
            assert v2 == got and old == got

            await _replays_and_old_timestamps(endpoint, key, monkeypatch)
            await _refusals(stack, key, cli)


async def _replays_and_old_timestamps(
    endpoint: str, key: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each SDK signs a nonce it was given twice, and a time 16 minutes ago (the SDKs' own
    signers: the ACS3 headers and v1 queries through the SDK's extends parameters, the legacy
    SDK's nonce and clock through the helper it draws them from)."""
    old = stamp(datetime.now(UTC) - timedelta(minutes=16))
    acs3, v2 = sdk(endpoint, key), sdk(endpoint, key, v2=True)
    await describe(acs3, headers={"x-acs-signature-nonce": "replayed-acs3"})
    assert await sdk_code(lambda: describe(acs3, headers={"x-acs-signature-nonce": "replayed-acs3"})) == (400, "SignatureNonceUsed")  # fmt: skip
    await describe(v2, queries={"SignatureNonce": "replayed-v1"})
    assert await sdk_code(lambda: describe(v2, queries={"SignatureNonce": "replayed-v1"})) == (400, "SignatureNonceUsed")  # fmt: skip
    assert await sdk_code(lambda: describe(acs3, headers={"x-acs-date": old})) == (
        400,
        "InvalidTimeStamp.Expired",
    )
    assert await sdk_code(lambda: describe(v2, queries={"Timestamp": old})) == (
        400,
        "InvalidTimeStamp.Expired",
    )
    with monkeypatch.context() as patch:
        patch.setattr(parameter_helper, "get_uuid", lambda: "replayed-legacy")
        await asyncio.to_thread(legacy, endpoint, key)
        assert await legacy_code(lambda: legacy(endpoint, key)) == (400, "SignatureNonceUsed")
        patch.setattr(parameter_helper, "get_iso_8061_date", lambda: old)
        patch.setattr(parameter_helper, "get_uuid", lambda: "fresh-legacy")
        assert await legacy_code(lambda: legacy(endpoint, key)) == (400, "InvalidTimeStamp.Expired")


async def _refusals(stack: Stack, key: dict[str, str], cli: Callable[..., Any]) -> None:
    endpoint = stack.vod_endpoint
    for v2 in (False, True):
        client = sdk(endpoint, key, v2=v2, secret="wrong")
        assert await sdk_code(lambda c=client: describe(c)) == (400, "SignatureDoesNotMatch")
        client = sdk(endpoint, {"AccessKeyId": "CWnosuch", "AccessKeySecret": "x"}, v2=v2)
        assert await sdk_code(lambda c=client: describe(c)) == (404, "InvalidAccessKeyId.NotFound")
    # The legacy SDK turns the cloud's SignatureDoesNotMatch, whose string to sign it checks, into its own code.
    assert await legacy_code(lambda: legacy(endpoint, key, secret="wrong")) == (400, "InvalidAccessKeySecret")
    assert await legacy_code(lambda: legacy(endpoint, key, region="cn-beijing")) == (
        400,
        "RegionId.ApiNotSupported",
    )
    assert await legacy_code(lambda: legacy(endpoint, key, domain="nosuch.test")) == (
        404,
        "InvalidDomain.NotFound",
    )

    # Another account: its own key works, but this account's domain does not exist for it.
    _, other_api_key = await new_account(stack.settings.database_url, "vod-other")
    code, out, _ = await cli("vod", "keys", "create", "--json", service="vod", key=other_api_key)
    other = json.loads(out)
    assert await sdk_code(lambda: describe(sdk(endpoint, other))) == (404, "InvalidDomain.NotFound")
    assert await legacy_code(lambda: legacy(endpoint, other)) == (404, "InvalidDomain.NotFound")
    code, _, err = await cli("vod", "keys", "revoke", key["AccessKeyId"], service="vod", key=other_api_key)
    assert code == 2 and "not found" in err  # another account's key is not its to revoke

    code, out, _ = await cli("vod", "keys", "list", service="vod")
    assert code == 0 and key["AccessKeyId"] in out and "live" in out and key["AccessKeySecret"] not in out
    code, out, _ = await cli("vod", "keys", "revoke", key["AccessKeyId"], service="vod")
    assert code == 0
    # Refused at once: the very next request, no cache to expire.
    assert await sdk_code(lambda: describe(sdk(endpoint, key))) == (400, "InvalidAccessKeyId.Inactive")
    assert await legacy_code(lambda: legacy(endpoint, key)) == (400, "InvalidAccessKeyId.Inactive")
    code, out, _ = await cli("vod", "keys", "list", "--json", service="vod")
    [listed] = json.loads(out)
    assert listed["access_key_id"] == key["AccessKeyId"] and "revoked_at" in listed
