"""Keys, CSRs and certificates of hosted instances: pure functions over PEM bytes.

An uploaded certificate is checked by `platform.cert_upload`, as the VOD API's uploads are:
the key must be the certificate's, and the chain is put in order and verified against
the trust store (CERTWATCH_CA_FILE).
"""

from __future__ import annotations

from acme import crypto_util
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certwatch.contracts.hosting import Certificate, KeyType
from certwatch.platform import cert_upload
from certwatch.platform.errors import InvalidArgument

_PKCS8 = serialization.PrivateFormat.PKCS8
_PEM = serialization.Encoding.PEM


def new_key_pem(key_type: KeyType) -> bytes:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == KeyType.RSA2048:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(_PEM, _PKCS8, serialization.NoEncryption())


def csr_pem(key_pem: bytes, names: list[str]) -> bytes:
    return bytes(crypto_util.make_csr(key_pem, names))


def split_pem(pem: str | bytes) -> list[x509.Certificate]:
    data = pem.encode() if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificates(data) if data.strip() else []


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(_PEM).decode()


def _issuer(cert: x509.Certificate) -> str:
    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        attrs = cert.issuer.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    return cert.issuer.rfc4514_string()


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [str(n) for n in san.get_values_for_type(x509.DNSName)]


def facts(leaf: x509.Certificate, chain: list[x509.Certificate]) -> Certificate:
    return Certificate(
        serial=format(leaf.serial_number, "x"), not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc, names=_names(leaf), issuer=_issuer(leaf),
        cert_pem=_pem(leaf), chain_pem="".join(_pem(c) for c in chain),
    )  # fmt: skip


def of_fullchain(fullchain_pem: str) -> Certificate:
    certs = split_pem(fullchain_pem)
    if not certs:
        raise ValueError("the CA returned no certificate")
    return facts(certs[0], certs[1:])


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):  # kept only after cert_upload's check
        raise ValueError("a kept key is EC or RSA")
    return key


def checked_upload(
    cert_pem: bytes, key_pem: bytes, chain_pem: bytes, *, ca_file: str | None
) -> tuple[Certificate, bytes]:
    """The facts and the key (PKCS#8 PEM) of an upload checked as every upload is
    (`platform.cert_upload`: key, order, trust store), or InvalidArgument naming the field."""
    try:
        checked = cert_upload.check_upload(cert_pem, key_pem, chain_pem, ca_file=ca_file)
    except cert_upload.UploadRefused as refused:
        raise InvalidArgument([(refused.part.value, refused.rule)]) from None
    return facts(checked.leaf, checked.chain), checked.key_pem


def to_pkcs12(cert_pem: str, chain_pem: str, key_pem: bytes, password: bytes | None) -> bytes:
    key = _load_key(key_pem)
    cas = split_pem(chain_pem)
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())  # fmt: skip
    return pkcs12.serialize_key_and_certificates(
        b"certwatch", key, split_pem(cert_pem)[0], cas or None, encryption
    )
