"""Apple App Transport Security (ATS) requirements over probe facts.

ATS is what iOS/macOS apps enforce by default, so a site that fails it breaks apps even
while browsers still work. Every unmet requirement is reported, not just the first.
"""

from __future__ import annotations

from collections.abc import Sequence

from certwatch.rules.facts import AtsResult, CertFacts

_TLS_ORDER = {"SSLv3": 0, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}
_STRONG_HASHES = frozenset({"sha256", "sha384", "sha512"})
_MIN_BITS = {"RSA": 2048, "EC": 256}


def is_forward_secret(tls_version: str | None, cipher: str | None) -> bool | None:
    """Whether the negotiated key exchange is ephemeral (None when nothing was negotiated).

    TLS 1.3 only has ephemeral key exchange; before it, OpenSSL names ephemeral suites
    ECDHE-*, DHE-* or (older) EDH-*.
    """
    if tls_version is None or cipher is None:
        return None
    if tls_version == "TLSv1.3":
        return True
    return cipher.startswith(("ECDHE-", "DHE-", "EDH-"))


def ats_check(tls_version: str | None, cipher: str | None, chain: Sequence[CertFacts]) -> AtsResult:
    """Check TLS >= 1.2, a forward-secret cipher, SHA-2 signatures and key sizes."""
    reasons: list[str] = []
    if _TLS_ORDER.get(tls_version or "", -1) < _TLS_ORDER["TLSv1.2"]:
        reasons.append(f"TLS version {tls_version or 'unknown'} is below TLS 1.2")
    if not is_forward_secret(tls_version, cipher):
        reasons.append(f"cipher {cipher or 'unknown'} does not provide forward secrecy")
    if not chain:
        reasons.append("no certificate was presented")
    for index, cert in enumerate(chain):
        if cert.self_signed and index > 0:
            continue  # a root's self-signature is never checked by clients
        if cert.signature_hash is not None and cert.signature_hash not in _STRONG_HASHES:
            reasons.append(f"{cert.subject} is signed with {cert.signature_hash}, ATS requires SHA-256+")
    if chain:
        leaf = chain[0]
        minimum = _MIN_BITS.get(leaf.key_type)
        if minimum is not None and (leaf.key_bits or 0) < minimum:
            reasons.append(f"{leaf.key_type} key of {leaf.key_bits} bits, ATS requires {minimum} or more")
    return AtsResult(passed=not reasons, reasons=tuple(reasons))
