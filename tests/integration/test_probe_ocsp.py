"""Revocation through a local OCSP responder; failures never raise a false alarm."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from certwatch.prober import ocsp
from certwatch.prober.tls_probe import ProbeOptions, probe
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict, classify
from certwatch.rules.facts import EndpointFacts
from tests.support.ocsp_server import OcspResponder, ocsp_responder
from tests.support.pki import TestPKI
from tests.support.tls_server import closed_port, server_context, tls_server

HOST = "www.example.test"
OCSP_HOST = "ocsp.example.test"
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    with TestPKI(label="OCSP Test") as built:
        yield built


@pytest.fixture
def responder(pki: TestPKI) -> Iterator[tuple[OcspResponder, int]]:
    ocsp.clear_cache()
    with ocsp_responder(pki.intermediate) as running:
        yield running


def check(
    pki: TestPKI, ocsp_port: int, mark: set[int] | None, *, allow: bool = True
) -> tuple[EndpointFacts, Verdict]:
    leaf = pki.leaf(HOST, ocsp_url=f"http://{OCSP_HOST}:{ocsp_port}/ocsp")
    if mark is not None:
        mark.add(leaf.cert.serial_number)
    with tls_server(server_context(*pki.server_files(leaf))) as port:
        # With allow=False the site stays reachable and only the responder's address is not.
        options = ProbeOptions(
            ca_file=pki.ca_file,
            allow_networks=(ipaddress.ip_network("127.0.0.1/32"),),
            resolve={
                (HOST, port): ["127.0.0.1"],
                (OCSP_HOST, ocsp_port): ["127.0.0.1" if allow else "127.0.0.9"],
            },
            ocsp_timeout=1.0,
        )
        result = asyncio.run(probe(HOST, port, options=options))
    return result.endpoints[0], classify(result, first_check=False, now=datetime.now(UTC))


def test_good_certificate(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    server, port = responder
    endpoint, verdict = check(pki, port, server.good)
    assert endpoint.ocsp_status == "good"
    assert verdict.status is Status.SECURE


def test_revoked_certificate_fails_chain_validation(
    pki: TestPKI, responder: tuple[OcspResponder, int]
) -> None:
    server, port = responder
    endpoint, verdict = check(pki, port, server.revoked)
    assert endpoint.ocsp_status == "revoked" and "keyCompromise" in (endpoint.ocsp_detail or "")
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert verdict.findings[0].problem == "revoked"


def test_unknown_serial_is_no_alarm(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    _, port = responder
    endpoint, verdict = check(pki, port, None)
    assert endpoint.ocsp_status == "unknown"
    assert verdict.status is Status.SECURE


def test_responder_down_is_unknown() -> None:
    ocsp.clear_cache()
    with TestPKI(label="OCSP Down") as pki, closed_port() as port:
        endpoint, verdict = check(pki, port, None)
    assert endpoint.ocsp_status == "unknown" and "failed" in (endpoint.ocsp_detail or "")
    assert verdict.status is Status.SECURE


def test_responder_outside_network_policy_is_not_contacted(
    pki: TestPKI, responder: tuple[OcspResponder, int]
) -> None:
    server, port = responder
    endpoint, verdict = check(pki, port, server.revoked, allow=False)
    assert server.requests == 0
    assert endpoint.ocsp_status == "unknown" and verdict.status is Status.SECURE


def test_answers_are_cached(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    server, port = responder
    leaf = pki.leaf(HOST, ocsp_url=f"http://{OCSP_HOST}:{port}/ocsp")
    server.good.add(leaf.cert.serial_number)
    options = {
        "resolve": {(OCSP_HOST, port): ["127.0.0.1"]},
        "allow_networks": LOOPBACK,
        "timeout": 1.0,
    }

    async def twice() -> list[tuple[str, str | None]]:
        return [
            await ocsp.check_revocation(leaf.cert, pki.intermediate.cert, [leaf_url], **options)  # type: ignore[arg-type]
            for _ in range(2)
        ]

    leaf_url = f"http://{OCSP_HOST}:{port}/ocsp"
    assert [s for s, _ in asyncio.run(twice())] == ["good", "good"]
    assert server.requests == 1
