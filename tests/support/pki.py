"""A throw-away PKI for tests: roots, intermediates and leaves with every flaw we detect.

Certificates follow the CA/Browser Forum profile that cryptography's verifier enforces
(basic constraints, key usage, EKU, SKI/AKI), so a "good" leaf really verifies and each
test changes exactly one thing. Keys are cached per role because RSA key generation is
the slowest part of the suite.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")  # sha256WithRSAEncryption
_SHA1_RSA_OID = bytes.fromhex("06092a864886f70d010105")  # sha1WithRSAEncryption


@lru_cache(maxsize=64)
def make_key(kind: str = "ec", bits: int = 256, slot: str = "") -> PrivateKey:
    """A private key, cached per (kind, bits, slot): different slots give different keys."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    curve = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}[bits]
    return ec.generate_private_key(curve)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(cn: str, org: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _resign_sha1(cert: x509.Certificate, key: PrivateKey) -> x509.Certificate:
    """Re-sign an RSA/SHA-256 certificate with SHA-1.

    cryptography refuses to create SHA-1 signatures for certificates, but servers in the
    wild still present them; swapping the same-length algorithm OID and the signature
    (RSA signatures keep their length) yields a faithful SHA-1 certificate.
    """
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 test certificates are RSA only")
    der = cert.public_bytes(serialization.Encoding.DER).replace(_SHA256_RSA_OID, _SHA1_RSA_OID)
    patched = x509.load_der_x509_certificate(der)
    signature = key.sign(patched.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())
    return x509.load_der_x509_certificate(der[: -len(signature)] + signature)


def issue(
    cn: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    org: str | None = None,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    key: PrivateKey | None = None,
    hash_name: str = "sha256",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ocsp_url: str | None = None,
    client: bool = False,
) -> Issued:
    """Issue a certificate; ``issuer=None`` makes it self-signed."""
    now = datetime.now(UTC)
    key = key or make_key("ec", 256, f"leaf-{cn}")
    subject = _name(cn, org)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(63) + 1)
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), False)
    )
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    if ca:
        usage.update(key_cert_sign=True, crl_sign=True, digital_signature=True)
    else:
        usage.update(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey))
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if ocsp_url:
        access = x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), False)
    if hash_name == "sha1":
        return Issued(_resign_sha1(builder.sign(signer_key, hashes.SHA256()), signer_key), key)
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[hash_name]
    return Issued(builder.sign(signer_key, algorithm), key)


@dataclass
class TestPKI:
    """A root and an intermediate, plus a scratch directory for PEM files.

    Use as a context manager (or call ``close``) so the directory is removed.
    """

    __test__ = False  # not a pytest test class

    label: str = "certwatch Test"  # distinct labels give distinct names and keys
    root: Issued = field(init=False)
    intermediate: Issued = field(init=False)
    _tmp: tempfile.TemporaryDirectory[str] = field(init=False)

    def __post_init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="certwatch-pki-")
        self.root = issue(
            f"{self.label} Root",
            ca=True,
            org=f"{self.label} CA",
            key=make_key(slot=f"{self.label} root"),
        )
        self.intermediate = issue(
            f"{self.label} Intermediate",
            issuer=self.root,
            ca=True,
            org=f"{self.label} Issuing",
            key=make_key(slot=f"{self.label} intermediate"),
        )

    def __enter__(self) -> TestPKI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    @property
    def directory(self) -> Path:
        return Path(self._tmp.name)

    def write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)

    @property
    def ca_file(self) -> str:
        """PEM file with only this PKI's root: what ``ProbeOptions.ca_file`` should get."""
        path = self.directory / "root.pem"
        if not path.exists():
            path.write_bytes(self.root.pem)
        return str(path)

    def leaf(self, cn: str = "www.example.test", **kwargs: object) -> Issued:
        """A leaf issued by the intermediate; SAN defaults to the CN."""
        kwargs.setdefault("dns", (cn,))
        kwargs.setdefault("issuer", self.intermediate)
        return issue(cn, **kwargs)  # type: ignore[arg-type]

    def server_files(self, leaf: Issued, chain: tuple[Issued, ...] | None = None) -> tuple[str, str]:
        """(certfile, keyfile) for a server that sends ``leaf`` then ``chain`` in that order.

        ``chain`` defaults to the intermediate; pass ``()`` for a leaf-only server.
        """
        extra = (self.intermediate,) if chain is None else chain
        body = leaf.pem + b"".join(c.pem for c in extra)
        tag = hashlib.sha256(body).hexdigest()[:16]
        return (self.write(f"{tag}-chain.pem", body), self.write(f"{tag}-key.pem", leaf.key_pem))
