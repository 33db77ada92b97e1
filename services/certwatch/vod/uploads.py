"""A certificate uploaded with its key (SetVodDomainCertificate): checked before it is kept.

The key must be the certificate's; the chain is put in issuance order (leaf first, as a
server sends it) and verified for the domain against the trust store CERTWATCH_CA_FILE
names, by the checks every upload passes (`platform.cert_upload`, shared with hosting's
UploadCertificate); this module words their refusals in the API's error format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certwatch.platform import cert_upload
from certwatch.vod.errors import ApiError, invalid


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


def check(
    domain: str, cert_pem: str, key_pem: str, *, ca_file: str | None, now: datetime | None = None
) -> CheckedUpload:
    """The upload verified for `domain` (`platform.cert_upload`), or `ApiError` naming the field and the rule."""
    try:
        checked = cert_upload.check_upload(
            cert_pem.encode(), key_pem.encode(), ca_file=ca_file, name=domain, now=now
        )
    except cert_upload.UploadRefused as refused:
        if refused.kind == cert_upload.Refusal.KEY_MISMATCH:
            raise ApiError("InvalidCertificate.KeyMismatch", "The private key SSLPri does not match the certificate SSLPub.") from None  # fmt: skip
        if refused.kind == cert_upload.Refusal.MALFORMED:
            raise invalid(
                "SSLPri" if refused.part == cert_upload.Part.KEY else "SSLPub", refused.rule
            ) from None
        raise ApiError("InvalidCertificate", f"The certificate is refused: {refused.rule}.") from None
    return CheckedUpload(
        chain_pem=checked.chain_pem, key_pem=checked.key_pem.decode(), leaf=summary(checked.leaf)
    )


def summary_of_pem(chain_pem: str) -> CertSummary:
    """The summary of a kept chain's leaf (its first certificate)."""
    return summary(x509.load_pem_x509_certificates(chain_pem.encode())[0])


def cert_id(account_id: object, sha256: str) -> str:
    """A certificate's CertId in an account: a decimal number below 2**52 (the SDK's CertId
    is an integer; JSON readers keep such numbers exact), the same for the same certificate."""
    return str(int(hashlib.sha256(f"vod-cert:{account_id}:{sha256}".encode()).hexdigest()[:13], 16))
