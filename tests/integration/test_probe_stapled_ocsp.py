"""Revocation from the server's stapled OCSP response, against Debian's nginx stapling it.

A usable staple (about this leaf, signed by its issuer, fresh) is final: "good" or "revoked"
without a single request to the responder. An unusable one (another certificate, stale,
forged) is never an alarm: the probe asks the certificate's responder as if there were no
staple. Everything runs on loopback: nginx, the local OCSP responder and the probe.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ReasonFlags, ocsp

from certwatch.prober import ocsp as prober_ocsp
from certwatch.prober.tls_chain import NATIVE
from certwatch.prober.tls_probe import ProbeOptions, probe
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict, classify
from certwatch.rules.facts import EndpointFacts
from tests.support.nginx import nginx
from tests.support.ocsp_server import OcspResponder, ocsp_responder
from tests.support.pki import Issued, TestPKI

pytestmark = pytest.mark.skipif(
    not NATIVE, reason="only the native handshake driver sees staples (the stdlib cannot)"
)

HOST = "www.example.test"
OCSP_HOST = "ocsp.example.test"
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    with TestPKI(label="Stapling Test") as built:
        yield built


@pytest.fixture
def responder(pki: TestPKI) -> Iterator[tuple[OcspResponder, int]]:
    prober_ocsp.clear_cache()
    with ocsp_responder(pki.intermediate) as running:
        yield running


def make_staple(
    pki: TestPKI,
    about: Issued,
    status: ocsp.OCSPCertStatus,
    *,
    age: timedelta = timedelta(minutes=1),
    valid_for: timedelta = timedelta(hours=1),
    signer: Issued | None = None,
) -> str:
    """A DER OCSP response about ``about`` written to a file; returns its path."""
    now = datetime.now(UTC)
    signer = signer or pki.intermediate
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=about.cert,
            issuer=pki.intermediate.cert,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=now - age,
            next_update=now - age + valid_for,
            revocation_time=now - timedelta(days=3) if revoked else None,
            revocation_reason=ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    )
    der = builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return pki.write(f"staple-{about.cert.serial_number}-{status.name}-{len(der)}.der", der)


def check(
    pki: TestPKI,
    leaf: Issued,
    ocsp_port: int,
    staple: str | None,
    *,
    check_ocsp: bool = True,
) -> tuple[EndpointFacts, Verdict]:
    with nginx(*pki.server_files(leaf), stapling_file=staple, workers=1) as (port, _):
        options = ProbeOptions(
            ca_file=pki.ca_file,
            allow_networks=LOOPBACK,
            resolve={(HOST, port): ["127.0.0.1"], (OCSP_HOST, ocsp_port): ["127.0.0.1"]},
            ocsp_timeout=1.0,
            check_ocsp=check_ocsp,
        )
        result = asyncio.run(probe(HOST, port, options=options))
    assert result.endpoints[0].error is None, result.endpoints[0].error
    return result.endpoints[0], classify(result, first_check=False, now=datetime.now(UTC))


def good_leaf(pki: TestPKI, server: OcspResponder, port: int) -> Issued:
    """A leaf the responder calls good (so only a staple could say otherwise)."""
    leaf = pki.leaf(HOST, ocsp_url=f"http://{OCSP_HOST}:{port}/ocsp")
    server.good.add(leaf.cert.serial_number)
    return leaf


def test_good_staple_is_final(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    server, port = responder
    leaf = good_leaf(pki, server, port)
    endpoint, verdict = check(pki, leaf, port, make_staple(pki, leaf, ocsp.OCSPCertStatus.GOOD))
    assert (endpoint.ocsp_status, endpoint.ocsp_detail) == ("good", "stapled: good")
    assert server.requests == 0
    assert verdict.status is Status.SECURE


def test_revoked_staple_fails_chain_validation(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    server, port = responder
    leaf = good_leaf(pki, server, port)
    endpoint, verdict = check(pki, leaf, port, make_staple(pki, leaf, ocsp.OCSPCertStatus.REVOKED))
    assert endpoint.ocsp_status == "revoked"
    assert (endpoint.ocsp_detail or "").startswith("stapled: revoked at ")
    assert "keyCompromise" in (endpoint.ocsp_detail or "")
    assert server.requests == 0
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert verdict.findings[0].problem == "revoked"
    assert "keyCompromise" in verdict.findings[0].detail


@pytest.mark.parametrize("flaw", ["another certificate", "stale", "forged"])
def test_unusable_staple_falls_back_to_the_responder(
    pki: TestPKI, responder: tuple[OcspResponder, int], flaw: str
) -> None:
    """Each unusable staple says "revoked"; none may raise the alarm."""
    server, port = responder
    leaf = good_leaf(pki, server, port)
    revoked = ocsp.OCSPCertStatus.REVOKED
    if flaw == "another certificate":
        staple = make_staple(pki, pki.leaf(HOST), revoked)
        why = "response is about another certificate"
    elif flaw == "stale":
        staple = make_staple(pki, leaf, revoked, age=timedelta(days=2), valid_for=timedelta(days=1))
        why = "response is not current"
    else:
        staple = make_staple(pki, leaf, revoked, signer=pki.root)
        why = "response is not signed by the issuer or its OCSP signer"
    endpoint, verdict = check(pki, leaf, port, staple)
    assert endpoint.ocsp_status == "good"
    assert endpoint.ocsp_detail == f"stapled: {why}; responder: good"
    assert server.requests == 1
    assert verdict.status is Status.SECURE


def test_no_staple_asks_the_responder(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    server, port = responder
    leaf = pki.leaf(HOST, ocsp_url=f"http://{OCSP_HOST}:{port}/ocsp")
    server.revoked.add(leaf.cert.serial_number)
    endpoint, verdict = check(pki, leaf, port, None)
    assert endpoint.ocsp_status == "revoked" and "stapled" not in (endpoint.ocsp_detail or "")
    assert server.requests == 1
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)


def test_check_ocsp_off_ignores_the_staple(pki: TestPKI, responder: tuple[OcspResponder, int]) -> None:
    server, port = responder
    leaf = good_leaf(pki, server, port)
    staple = make_staple(pki, leaf, ocsp.OCSPCertStatus.REVOKED)
    endpoint, verdict = check(pki, leaf, port, staple, check_ocsp=False)
    assert (endpoint.ocsp_status, endpoint.ocsp_detail) == (None, None)
    assert server.requests == 0
    assert verdict.status is Status.SECURE
