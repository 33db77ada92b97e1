"""Turn presented DER certificates into ``CertFacts``.

Parsing is the costly part of a probe that does not wait on the network, and most probes
see the same few chains again and again, so each DER encoding is parsed once and cached by
its bytes (bounded LRU).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    NameOID,
    SignatureAlgorithmOID,
)

from certwatch.rules.facts import CertFacts


@dataclass(frozen=True, slots=True)
class ParsedCert:
    """A parsed certificate with its facts; the probe needs both for path building."""

    cert: x509.Certificate
    facts: CertFacts


_SIGNATURE_NAMES: dict[x509.ObjectIdentifier, str] = {
    value: name.lower()
    for name, value in vars(SignatureAlgorithmOID).items()
    if isinstance(value, x509.ObjectIdentifier)
}


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _key_type_and_bits(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except (ValueError, TypeError) as exc:  # unsupported or malformed key
        return (f"unsupported ({exc})", None)
    if isinstance(key, rsa.RSAPublicKey):
        return ("RSA", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("EC", key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("Ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return ("Ed448", 456)
    if isinstance(key, dsa.DSAPublicKey):
        return ("DSA", key.key_size)
    return (type(key).__name__, None)


def _sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ((), ())
    dns = tuple(str(n).lower() for n in san.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return (dns, ips)


def _public_key_sha256(cert: x509.Certificate) -> str | None:
    try:
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # unsupported or malformed key
        return None
    return hashlib.sha256(spki).hexdigest()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        str(desc.access_location.value)
        for desc in aia.value
        if desc.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(desc.access_location, x509.UniformResourceIdentifier)
    )


def _legacy_signature_ok(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Check signatures cryptography's own helper refuses (SHA-1, MD5): seen in the wild."""
    key = issuer.public_key()
    params = cert.signature_algorithm_parameters
    algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.AsymmetricPadding):
            if algorithm is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_directly_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key produced ``cert``'s signature."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, TypeError):
        return False
    except (ValueError, UnsupportedAlgorithm):
        return _legacy_signature_ok(cert, issuer)
    return True


def _signature(cert: x509.Certificate) -> tuple[str | None, str | None]:
    oid = cert.signature_algorithm_oid
    algorithm = _SIGNATURE_NAMES.get(oid, oid.dotted_string)
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return (algorithm, None)
    return (algorithm, hash_alg.name if hash_alg is not None else None)


@lru_cache(maxsize=4096)
def parse_der(der: bytes) -> ParsedCert:
    """Parse one DER certificate (cached). Raises ValueError for undecodable input."""
    cert = x509.load_der_x509_certificate(der)
    key_type, key_bits = _key_type_and_bits(cert)
    dns_names, ip_addresses = _sans(cert)
    sig_alg, sig_hash = _signature(cert)
    self_signed = cert.subject == cert.issuer and is_directly_issued_by(cert, cert)
    facts = CertFacts(
        subject=cert.subject.rfc4514_string(),
        subject_cn=_name_attr(cert.subject, NameOID.COMMON_NAME),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=_name_attr(cert.issuer, NameOID.COMMON_NAME),
        issuer_org=_name_attr(cert.issuer, NameOID.ORGANIZATION_NAME),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm=sig_alg,
        signature_hash=sig_hash,
        is_ca=_is_ca(cert),
        self_signed=self_signed,
        ocsp_urls=_ocsp_urls(cert),
        public_key_sha256=_public_key_sha256(cert),
    )
    return ParsedCert(cert=cert, facts=facts)
