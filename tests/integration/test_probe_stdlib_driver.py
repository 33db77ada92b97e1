"""The standard-library handshake path (used when cryptography's binding lacks a function)
reaches the same verdicts as the native driver."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.prober import tls_probe
from certwatch.prober.options import ProbeOptions
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import classify
from tests.support.pki import TestPKI
from tests.support.tls_server import closed_port, http_server, server_context, silent_server, tls_server

NOW = datetime.now(UTC)


@pytest.fixture(params=["native", "stdlib"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "native" and not tls_probe.NATIVE:
        pytest.skip("cryptography's OpenSSL binding lacks a function the native driver needs")
    monkeypatch.setattr(tls_probe, "NATIVE", request.param == "native")
    yield request.param


def _verdict(port: int, ca_file: str) -> tuple[Status, Cause | None, str | None]:
    options = ProbeOptions(ca_file=ca_file, allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
                           resolve={("d.test", port): ["127.0.0.1"]}, connect_timeout=1,
                           handshake_timeout=1, overall=3, check_ocsp=False)  # fmt: skip
    result = asyncio.run(tls_probe.probe("d.test", port, options=options))
    verdict = classify(result, first_check=False, now=datetime.now(UTC))
    return verdict.status, verdict.primary_cause, result.endpoints[0].tls_version


def test_both_drivers_agree(driver: str) -> None:
    with TestPKI() as pki:
        good = pki.server_files(pki.leaf("d.test"))
        old = pki.server_files(
            pki.leaf("d.test", not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=1))
        )
        with tls_server(server_context(*good)) as port:
            status, cause, version = _verdict(port, pki.ca_file)
            assert (status, cause) == (Status.SECURE, None) and version == "TLSv1.3"
        with tls_server(server_context(*old)) as port:
            assert _verdict(port, pki.ca_file)[:2] == (Status.ABNORMAL, Cause.EXPIRED)
        with http_server() as port:
            assert _verdict(port, pki.ca_file)[:2] == (Status.ABNORMAL, Cause.NO_SSL_CERTIFICATE)
        with closed_port() as port, silent_server() as silent:
            assert _verdict(port, pki.ca_file)[:2] == (Status.ABNORMAL, Cause.NETWORK_CONNECTION_FAILURE)
            assert _verdict(silent, pki.ca_file)[:2] == (Status.ABNORMAL, Cause.NETWORK_CONNECTION_FAILURE)
