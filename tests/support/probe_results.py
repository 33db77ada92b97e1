"""Synthetic probe results for classifier tests: one certificate per (name, serial, key)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from certwatch.rules import facts as f

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
INTERMEDIATE = "CN=Example Issuing,O=Example CA"


def _hex(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def cert(
    cn: str = "www.example.test",
    *,
    serial: int = 1,
    key: str = "k1",
    issuer: str = INTERMEDIATE,
    days: float = 90,
    ca: bool = False,
) -> f.CertFacts:
    """A certificate whose fingerprint follows from every argument, as a real one would."""
    subject = f"CN={cn}"
    return f.CertFacts(
        subject=subject, subject_cn=cn, issuer=issuer, issuer_cn=issuer.split(",")[0][3:],
        issuer_org="Example CA", serial=format(serial, "x"),
        not_before=NOW - timedelta(days=10), not_after=NOW + timedelta(days=days),
        sha256=_hex(subject, serial, key, issuer, days), dns_names=() if ca else (cn,),
        ip_addresses=(), key_type="EC", key_bits=256, signature_algorithm="ecdsa_with_sha256",
        signature_hash="sha256", is_ca=ca, self_signed=False, ocsp_urls=(),
        public_key_sha256=_hex("key", key),
    )  # fmt: skip


def intermediate(name: str = "Example Issuing", *, key: str = "int") -> f.CertFacts:
    return cert(name, key=key, issuer="CN=Example Root", days=900, ca=True)


def served(ip: str, *chain: f.CertFacts) -> f.EndpointFacts:
    return f.EndpointFacts(
        ip=ip, phase=f.PHASE_DONE, tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256",
        forward_secret=True, chain=chain, verified=True, ats=f.AtsResult(True, ()),
    )  # fmt: skip


def refused(ip: str) -> f.EndpointFacts:
    return f.EndpointFacts(ip=ip, phase=f.PHASE_TCP, error_kind=f.ERR_REFUSED, error="refused")


def result(*endpoints: f.EndpointFacts, at: datetime = NOW) -> f.ProbeResult:
    return f.ProbeResult(
        host="www.example.test", port=443, started_at=at, duration_ms=1.0,
        addresses=tuple(e.ip for e in endpoints), dns_error=None, dns_ms=0.1, endpoints=endpoints,
    )  # fmt: skip


def unresolved(at: datetime = NOW) -> f.ProbeResult:
    return f.ProbeResult(
        host="www.example.test", port=443, started_at=at, duration_ms=1.0, addresses=(),
        dns_error="NXDOMAIN", dns_ms=0.1, endpoints=(),
    )  # fmt: skip
