"""Probe real TLS servers on loopback, one certificate or chain flaw per test."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.prober.tls_probe import ProbeOptions, probe
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict, classify
from certwatch.rules.facts import ProbeResult
from tests.support.pki import Issued, TestPKI, issue, make_key
from tests.support.tls_server import server_context, tls_server

HOST = "www.example.test"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    with TestPKI() as built:
        yield built


@contextlib.contextmanager
def serving(
    pki: TestPKI, leaf: Issued, chain: tuple[Issued, ...] | None = None, **context: object
) -> Iterator[int]:
    certfile, keyfile = pki.server_files(leaf, chain)
    with tls_server(server_context(certfile, keyfile, **context)) as port:  # type: ignore[arg-type]
        yield port


def check(pki: TestPKI, port: int, host: str = HOST) -> tuple[ProbeResult, Verdict]:
    options = ProbeOptions(
        ca_file=pki.ca_file,
        allow_networks=LOOPBACK,
        resolve={(host, port): ["127.0.0.1"]},
        connect_timeout=2,
        handshake_timeout=2,
        overall=5,
    )
    result = asyncio.run(probe(host, port, options=options))
    return result, classify(result, first_check=False, now=datetime.now(UTC))


def codes(result: ProbeResult) -> set[str]:
    return {p.code for e in result.endpoints for p in e.problems}


@pytest.mark.parametrize("key", [("ec", 256), ("rsa", 2048)], ids=["ecdsa", "rsa"])
def test_valid_certificate_is_secure(pki: TestPKI, key: tuple[str, int]) -> None:
    leaf = pki.leaf(HOST, key=make_key(*key, slot="valid"))
    with serving(pki, leaf) as port:
        result, verdict = check(pki, port)
    endpoint = result.endpoints[0]
    assert verdict.status is Status.SECURE, verdict.findings
    assert verdict.primary_cause is None and verdict.causes == ()
    assert verdict.brand == "certwatch Test Issuing"
    assert verdict.days_left in (88, 89)
    assert endpoint.verified and endpoint.problems == ()
    assert endpoint.chain[0].key_type == key[0].upper() and endpoint.chain[0].key_bits == key[1]
    assert [c.subject_cn for c in endpoint.chain] == [HOST, "certwatch Test Intermediate"]
    assert verdict.ats is not None and verdict.ats.passed, verdict.ats
    assert ProbeResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


@pytest.mark.parametrize(
    ("host", "status"),
    [("a.example.test", Status.SECURE), ("a.b.example.test", Status.ABNORMAL)],
    ids=["one-label", "too-deep"],
)
def test_wildcard_covers_exactly_one_label(pki: TestPKI, host: str, status: Status) -> None:
    with serving(pki, pki.leaf("*.example.test")) as port:
        _, verdict = check(pki, port, host)
    assert verdict.status is status
    if status is Status.ABNORMAL:
        assert verdict.causes == (Cause.CERTIFICATE_MISMATCH,)


def test_ip_address_san(pki: TestPKI) -> None:
    with serving(pki, pki.leaf("loopback", dns=(), ips=("127.0.0.1",))) as port:
        _, verdict = check(pki, port, "127.0.0.1")
    assert verdict.status is Status.SECURE, verdict.findings


def test_wrong_host_is_a_mismatch(pki: TestPKI) -> None:
    with serving(pki, pki.leaf("other.example.test")) as port:
        result, verdict = check(pki, port)
    assert verdict.causes == (Cause.CERTIFICATE_MISMATCH,)
    assert codes(result) == {"hostname_mismatch"}


@pytest.mark.parametrize(("days", "about"), [(31, False), (29, True)])
def test_about_to_expire_below_30_days(pki: TestPKI, days: int, about: bool) -> None:
    # Half a day of margin from this moment (NOW is the module's import time: minutes ago
    # in a long run), so a slow machine cannot move the day count.
    leaf = pki.leaf(HOST, not_after=datetime.now(UTC) + timedelta(days=days, hours=12))
    with serving(pki, leaf) as port:
        _, verdict = check(pki, port)
    assert verdict.days_left == days
    assert (verdict.causes == (Cause.ABOUT_TO_EXPIRE,)) is about
    assert (verdict.status is Status.SECURE) is not about


def test_expired_leaf(pki: TestPKI) -> None:
    leaf = pki.leaf(HOST, not_before=NOW - timedelta(days=100), not_after=NOW - timedelta(days=2))
    with serving(pki, leaf) as port:
        result, verdict = check(pki, port)
    assert verdict.status is Status.ABNORMAL and verdict.primary_cause is Cause.EXPIRED
    assert verdict.causes == (Cause.EXPIRED,)
    assert verdict.days_left == -3
    assert "expired" in codes(result)


def test_not_yet_valid_leaf(pki: TestPKI) -> None:
    leaf = pki.leaf(HOST, not_before=NOW + timedelta(days=1))
    with serving(pki, leaf) as port:
        result, verdict = check(pki, port)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert "not_yet_valid" in codes(result)


def test_self_signed(pki: TestPKI) -> None:
    leaf = issue(HOST, dns=(HOST,), org="Myself")
    with serving(pki, leaf, ()) as port:
        result, verdict = check(pki, port)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert codes(result) == {"self_signed"}
    assert result.endpoints[0].chain[0].self_signed


def test_untrusted_root(pki: TestPKI) -> None:
    with TestPKI(label="Elsewhere") as other:
        leaf = other.leaf(HOST)
        with serving(pki, leaf, (other.intermediate, other.root)) as port:
            result, verdict = check(pki, port)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert codes(result) == {"untrusted_root"}
    assert result.endpoints[0].verified is False


def test_leaf_only_chain_is_incomplete(pki: TestPKI) -> None:
    with serving(pki, pki.leaf(HOST), ()) as port:
        result, verdict = check(pki, port)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert codes(result) == {"chain_incomplete"}


def test_expired_intermediate(pki: TestPKI) -> None:
    old = issue(
        "Old Intermediate",
        issuer=pki.root,
        ca=True,
        key=make_key(slot="old-intermediate"),
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=10),
    )
    leaf = pki.leaf(HOST, issuer=old)
    with serving(pki, leaf, (old,)) as port:
        result, verdict = check(pki, port)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert codes(result) == {"intermediate_expired"}
    finding = verdict.findings[0]
    assert finding.cert_subject == "CN=Old Intermediate" and finding.ip == "127.0.0.1"
    assert result.endpoints[0].earliest_expiry_index == 1
    assert verdict.days_left == -11


def test_leaf_root_intermediate_is_secure_with_a_warning(pki: TestPKI) -> None:
    """Clients build the path whatever the order: a misordered chain is only a warning."""
    with serving(pki, pki.leaf(HOST), (pki.root, pki.intermediate)) as port:
        result, verdict = check(pki, port)
    endpoint = result.endpoints[0]
    assert verdict.status is Status.SECURE and verdict.causes == (), verdict.findings
    assert endpoint.verified and endpoint.problems == () and endpoint.path == (0, 2, 1)
    assert [w.code for w in endpoint.warnings] == ["wrong_order"]
    assert verdict.warnings == (f"127.0.0.1: {endpoint.warnings[0].detail}",)


def test_misordered_intermediates_are_secure_with_a_warning(pki: TestPKI) -> None:
    lower = issue("Lower Intermediate", issuer=pki.intermediate, ca=True, key=make_key(slot="lo"))
    leaf = pki.leaf(HOST, issuer=lower)
    with serving(pki, leaf, (pki.intermediate, lower)) as port:
        result, verdict = check(pki, port)
    assert verdict.status is Status.SECURE and codes(result) == set()
    assert [w.code for w in result.endpoints[0].warnings] == ["wrong_order"]
    with serving(pki, leaf, (lower, pki.intermediate)) as port:
        result, verdict = check(pki, port)
    assert verdict.status is Status.SECURE and result.endpoints[0].warnings == ()


def test_an_expired_extra_certificate_is_a_warning_not_expired(pki: TestPKI) -> None:
    stray = issue("Stray", dns=("stray.example.test",), key=make_key(slot="stray"),
                  not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=5))  # fmt: skip
    with serving(pki, pki.leaf(HOST), (pki.intermediate, stray)) as port:
        result, verdict = check(pki, port)
    endpoint = result.endpoints[0]
    assert verdict.status is Status.SECURE and verdict.days_left in (88, 89), verdict.findings
    assert endpoint.earliest_expiry_index == 2 and endpoint.path == (0, 1)
    assert [(w.code, w.cert_index) for w in endpoint.warnings] == [("unneeded_certificate", 2)]


def test_rsa_1024_is_weak_and_fails_ats(pki: TestPKI) -> None:
    leaf = pki.leaf(HOST, key=make_key("rsa", 1024, "weak"))
    with serving(pki, leaf, legacy=True) as port:
        result, verdict = check(pki, port)
    assert codes(result) == {"weak_key"}
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert verdict.ats is not None and not verdict.ats.passed
    assert any("1024" in reason for reason in verdict.ats.reasons)


def test_sha1_signature_is_weak_and_fails_ats(pki: TestPKI) -> None:
    rsa_ca = issue("SHA1 Issuer", issuer=pki.root, ca=True, key=make_key("rsa", 2048, "sha1ca"))
    leaf = issue(HOST, issuer=rsa_ca, dns=(HOST,), hash_name="sha1")
    with serving(pki, leaf, (rsa_ca,), legacy=True) as port:
        result, verdict = check(pki, port)
    assert result.endpoints[0].chain[0].signature_hash == "sha1"
    assert codes(result) == {"weak_signature"}
    assert verdict.ats is not None and not verdict.ats.passed
    assert any("sha1" in reason for reason in verdict.ats.reasons)


def test_tls10_only_server_fails_ats(pki: TestPKI) -> None:
    v1 = ssl.TLSVersion.TLSv1
    try:
        context_args = {"min_version": v1, "max_version": v1, "legacy": True}
        with serving(pki, pki.leaf(HOST), **context_args) as port:
            result, verdict = check(pki, port)
    except ssl.SSLError as exc:  # pragma: no cover - depends on the local OpenSSL build
        pytest.skip(f"local OpenSSL cannot serve TLS 1.0: {exc}")
    if result.endpoints[0].phase != "done":  # pragma: no cover
        pytest.skip(f"local OpenSSL refuses TLS 1.0: {result.endpoints[0].error}")
    assert result.endpoints[0].tls_version == "TLSv1"
    assert verdict.ats is not None and not verdict.ats.passed
    assert any("below TLS 1.2" in reason for reason in verdict.ats.reasons)


def test_tls12_without_forward_secrecy_fails_ats(pki: TestPKI) -> None:
    leaf = pki.leaf(HOST, key=make_key("rsa", 2048, "valid"))
    max12 = ssl.TLSVersion.TLSv1_2
    with serving(pki, leaf, max_version=max12, ciphers="AES128-SHA256") as port:
        result, verdict = check(pki, port)
    endpoint = result.endpoints[0]
    assert (endpoint.tls_version, endpoint.cipher) == ("TLSv1.2", "AES128-SHA256")
    assert endpoint.forward_secret is False
    assert verdict.status is Status.SECURE
    assert verdict.ats is not None and not verdict.ats.passed
    assert any("forward secrecy" in reason for reason in verdict.ats.reasons)
