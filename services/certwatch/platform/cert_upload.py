"""The checks every certificate uploaded with its key passes, wherever it is uploaded.

Every API that takes a certificate with its key (`UploadCertificate`,
`SetVodDomainCertificate`) keeps one a server will be configured with, so all check it the
same way, here: the key
must be the certificate's; the chain is put in issuance order (leaf first, as a server
sends it, the trust anchor left out) and verified against the trust store
CERTWATCH_CA_FILE names (`trust_bundle`: a file, `system`, else Mozilla's) with
cryptography's verifier, which applies a browser's CA/B rules (validity, names, key usage,
signatures). A refusal names the part (`Part`) and the rule; each API words it in its own
format. Pure but for reading the trust store once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from certwatch.platform.trust_bundle import bundle_path

_WILDCARD = "*."


class Part(StrEnum):
    CERT = "cert"  # the certificate (and any chain given with it)
    KEY = "key"
    CHAIN = "chain"


class Refusal(StrEnum):
    MALFORMED = "MALFORMED"  # not PEM, or not a kind of key certwatch keeps
    KEY_MISMATCH = "KEY_MISMATCH"  # the key is not the certificate's
    REFUSED = "REFUSED"  # a certificate rule: validity, names, chain, trust


class UploadRefused(Exception):
    """Which part of the upload breaks which rule, and what kind of refusal that is."""

    def __init__(self, part: Part, rule: str, kind: Refusal = Refusal.REFUSED) -> None:
        super().__init__(f"{part}: {rule}")
        self.part = part
        self.rule = rule
        self.kind = kind


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    leaf: x509.Certificate
    chain: list[x509.Certificate]  # verified issuers, in order, without the trust anchor
    key_pem: bytes  # PKCS#8, as it will be sealed

    @property
    def chain_pem(self) -> str:
        """Leaf first, then its issuers: what a server sends."""
        return "".join(c.public_bytes(Encoding.PEM).decode() for c in (self.leaf, *self.chain))


@lru_cache(maxsize=8)
def trust_store(ca_file: str | None) -> Store:
    with warnings.catch_warnings():  # OS bundles carry a few old roots with odd serials
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return Store(x509.load_pem_x509_certificates(Path(bundle_path(ca_file)).read_bytes()))


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]


def _certs(pem: bytes, part: Part) -> list[x509.Certificate]:
    if not pem.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise UploadRefused(part, "not PEM certificates", Refusal.MALFORMED) from None


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def _checked_name(name: str) -> str:
    """A wildcard is checked on one name it covers."""
    return "wildcard-check." + name[len(_WILDCARD) :] if name.startswith(_WILDCARD) else name


def check_upload(
    cert_pem: bytes, key_pem: bytes, chain_pem: bytes = b"", *, ca_file: str | None,
    name: str | None = None, now: datetime | None = None,
) -> CheckedUpload:  # fmt: skip
    """The upload verified for `name` (default: the leaf's first DNS name), or `UploadRefused`.

    The leaf is the certificate that issued none of the others, wherever it is in what was
    given (a server bundle is often pasted whole, in any order); the key must be its key,
    and every other certificate is a candidate issuer."""
    certs = _certs(cert_pem, Part.CERT)
    if not certs:
        raise UploadRefused(Part.CERT, "not a PEM certificate", Refusal.MALFORMED)
    given = certs + _certs(chain_pem, Part.CHAIN)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise UploadRefused(Part.KEY, "not an unencrypted PEM private key", Refusal.MALFORMED) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UploadRefused(Part.KEY, "only EC and RSA keys are supported", Refusal.MALFORMED)
    issuers = {c.issuer.public_bytes() for c in given if c.issuer != c.subject}
    leaf = next((c for c in given if c.subject.public_bytes() not in issuers), given[0])
    if _spki(leaf.public_key()) != _spki(key.public_key()):
        raise UploadRefused(Part.KEY, "does not match the certificate's public key", Refusal.KEY_MISMATCH)
    at = now or datetime.now(UTC)
    if at >= leaf.not_valid_after_utc:
        raise UploadRefused(Part.CERT, f"expired on {leaf.not_valid_after_utc.isoformat()}")
    if at < leaf.not_valid_before_utc:
        raise UploadRefused(Part.CERT, f"not valid before {leaf.not_valid_before_utc.isoformat()}")
    host = name or next(iter(_dns_names(leaf)), None)
    if host is None:
        raise UploadRefused(Part.CERT, "names no DNS name (subjectAltName) to verify it for")
    verifier = (
        PolicyBuilder().store(trust_store(ca_file)).time(at)
        .build_server_verifier(x509.DNSName(_checked_name(host)))
    )  # fmt: skip
    try:
        path = verifier.verify(leaf, [c for c in given if c is not leaf])
    except VerificationError as exc:
        raise UploadRefused(
            Part.CHAIN, f"its chain does not verify for {host} against the trust store ({exc})"
        ) from None
    pkcs8 = key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return CheckedUpload(leaf=path[0], chain=list(path[1:-1]), key_pem=pkcs8)
