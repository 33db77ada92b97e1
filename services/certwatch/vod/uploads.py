"""A certificate uploaded with its key (SetVodDomainCertificate): checked before it is kept.

The key must be the certificate's; the chain is put in issuance order (leaf first, as a
server sends it) and verified for the domain against the trust store CERTWATCH_CA_FILE
names (`platform.trust_bundle`: a file, `system`, else Mozilla's), with cryptography's verifier (the CA/B rules of
a browser: validity, names, key usage). Pure but for reading the trust store once.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from certwatch.platform.trust_bundle import bundle_path
from certwatch.vod.errors import ApiError, invalid
from certwatch.vod.names import WILDCARD


@dataclass(frozen=True, slots=True)
class CertSummary:
    """What the VOD responses say of a certificate."""

    sha256: str
    common_name: str
    issuer_org: str
    dns_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    algorithm: str  # the key's: "RSA", "EC"...
    sign_algorithm: str  # e.g. "sha256WithRSAEncryption"

    def to_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "common_name": self.common_name, "issuer_org": self.issuer_org,
                "dns_names": list(self.dns_names), "not_before": self.not_before.isoformat(),
                "not_after": self.not_after.isoformat(), "algorithm": self.algorithm,
                "sign_algorithm": self.sign_algorithm}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> CertSummary:
        return cls(str(d["sha256"]), str(d["common_name"]), str(d["issuer_org"]),
                   tuple(d["dns_names"]), datetime.fromisoformat(str(d["not_before"])),  # type: ignore[arg-type]
                   datetime.fromisoformat(str(d["not_after"])), str(d["algorithm"]),
                   str(d["sign_algorithm"]))  # fmt: skip


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    chain_pem: str  # verified, leaf first, without the trust anchor
    key_pem: str  # PKCS#8, as it will be sealed
    leaf: CertSummary


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    found = name.get_attributes_for_oid(oid)
    value = found[0].value if found else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def summary(cert: x509.Certificate) -> CertSummary:
    try:
        names = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))  # fmt: skip
    except x509.ExtensionNotFound:
        names = ()
    key = cert.public_key()
    # A CA without an organisation (pebble's) is named by its CN, as for observed certificates.
    issuer = _attr(cert.issuer, NameOID.ORGANIZATION_NAME) or _attr(cert.issuer, NameOID.COMMON_NAME)
    return CertSummary(
        sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        common_name=_attr(cert.subject, NameOID.COMMON_NAME), issuer_org=issuer,
        dns_names=names, not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        algorithm=type(key).__name__.removeprefix("_").replace("PublicKey", "").replace("EllipticCurve", "EC"),
        sign_algorithm=cert.signature_algorithm_oid._name,
    )  # fmt: skip


@lru_cache(maxsize=8)
def trust_store(ca_file: str | None) -> Store:
    with warnings.catch_warnings():  # OS bundles carry a few old roots with odd serials
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return Store(x509.load_pem_x509_certificates(Path(bundle_path(ca_file)).read_bytes()))


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]


def _bad(rule: str) -> ApiError:
    return ApiError("InvalidCertificate", f"The certificate is refused: {rule}.")


def check(
    domain: str, cert_pem: str, key_pem: str, *, ca_file: str | None, now: datetime | None = None
) -> CheckedUpload:
    """The upload verified for `domain`, or `ApiError` naming the field and the rule."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        raise invalid("SSLPub", "not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise invalid("SSLPri", "not an unencrypted PEM private key") from None
    # The leaf is the certificate that issued none of the others, wherever it is in the bundle.
    issuers = {c.issuer.public_bytes() for c in certs if c.issuer != c.subject}
    leaf = next((c for c in certs if c.subject.public_bytes() not in issuers), certs[0])
    if _spki(leaf.public_key()) != _spki(key.public_key()):
        raise ApiError("InvalidCertificate.KeyMismatch", "The private key SSLPri does not match the certificate SSLPub.")  # fmt: skip
    others = [c for c in certs if c is not leaf]
    # A wildcard domain is checked on one name it covers.
    name = "wildcard-check." + domain[len(WILDCARD) :] if domain.startswith(WILDCARD) else domain
    verifier = (
        PolicyBuilder().store(trust_store(ca_file)).time(now or datetime.now(UTC))
        .build_server_verifier(x509.DNSName(name))
    )  # fmt: skip
    try:
        path = verifier.verify(leaf, others)
    except VerificationError as exc:
        raise _bad(f"its chain does not verify for {domain} against the trust store ({exc})") from None
    chain = path[:-1] if len(path) > 1 else path  # the trust anchor is not sent
    return CheckedUpload(
        chain_pem="".join(c.public_bytes(Encoding.PEM).decode() for c in chain),
        key_pem=key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        leaf=summary(leaf),
    )  # fmt: skip


def summary_of_pem(chain_pem: str) -> CertSummary:
    """The summary of a kept chain's leaf (its first certificate)."""
    return summary(x509.load_pem_x509_certificates(chain_pem.encode())[0])


def cert_id(account_id: object, sha256: str) -> str:
    """A certificate's CertId in an account: a decimal number below 2**52 (the SDK's CertId
    is an integer; JSON readers keep such numbers exact), the same for the same certificate."""
    return str(int(hashlib.sha256(f"vod-cert:{account_id}:{sha256}".encode()).hexdigest()[:13], 16))
