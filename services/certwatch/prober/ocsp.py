"""Whether the leaf was revoked: from the server's stapled OCSP response, else its responder.

A stapled response (RFC 6066 status_request; only the native handshake driver sees one) is
judged like any other: ``check_stapled`` makes "good" or "revoked" final and no network is
used. Otherwise (no staple, or one that is unusable: another certificate, stale, badly
signed) the responder named in the leaf's AIA extension is queried with a tiny HTTP/1.0
POST. Revocation is an alarm users act on, so only a response about this very certificate
(serial and issuer hashes), signed by the issuer (or its delegated OCSP signer) and still
fresh can say "revoked"; every failure is "unknown", never a false alarm. The responder
address obeys the same network policy as probes, and its answers are cached per (issuer
key, serial).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from certwatch.prober.netpolicy import Network, refusal_reason

GOOD = "good"
REVOKED = "revoked"
UNKNOWN = "unknown"

CACHE_TTL_S = 300.0
_CACHE_MAX = 10_000
_MAX_RESPONSE = 64 * 1024
_CLOCK_SKEW = timedelta(minutes=5)
_cache: dict[tuple[bytes, int], tuple[float, str, str | None]] = {}


def clear_cache() -> None:
    _cache.clear()


def _signature_ok(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _is_delegated_signer(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def _single_response(
    response: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse | None:
    """The response's entry about ``leaf`` as issued by ``issuer`` (serial and both
    issuer hashes match), or None."""
    ids: dict[str, ocsp.OCSPRequest] = {}
    for single in response.responses:
        if single.serial_number != leaf.serial_number:
            continue
        algorithm = single.hash_algorithm
        cert_id = ids.get(algorithm.name)
        if cert_id is None:
            builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm)
            cert_id = ids[algorithm.name] = builder.build()
        if (
            single.issuer_key_hash == cert_id.issuer_key_hash
            and single.issuer_name_hash == cert_id.issuer_name_hash
        ):
            return single
    return None


def interpret_response(
    der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> tuple[str, str | None]:
    """Status and detail from a DER OCSP response; anything doubtful is "unknown".

    Never raises: a response about another certificate or issuer, a bad signature, a stale
    or future response, or anything malformed is "unknown" with the reason."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return (UNKNOWN, f"responder answered {response.response_status.name}")
        single = _single_response(response, leaf, issuer)
        if single is None:
            return (UNKNOWN, "response is about another certificate")
        signers = [issuer] + [c for c in response.certificates if _is_delegated_signer(c, issuer)]
        if not any(
            _signature_ok(
                s.public_key(),
                response.signature,
                response.tbs_response_bytes,
                response.signature_hash_algorithm,
            )
            for s in signers
        ):
            return (UNKNOWN, "response is not signed by the issuer or its OCSP signer")
        next_update = single.next_update_utc
        if single.this_update_utc > now + _CLOCK_SKEW or (
            next_update is not None and next_update < now - _CLOCK_SKEW
        ):
            return (UNKNOWN, "response is not current")
        status = single.certificate_status
        reason = single.revocation_reason
        when = single.revocation_time_utc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return (UNKNOWN, f"malformed OCSP response: {exc}")
    if status == ocsp.OCSPCertStatus.GOOD:
        return (GOOD, None)
    if status == ocsp.OCSPCertStatus.REVOKED:
        detail = f"revoked at {when.isoformat() if when else 'unknown time'}"
        return (REVOKED, detail + (f" ({reason.value})" if reason else ""))
    return (UNKNOWN, "responder does not know the certificate")


def check_stapled(
    der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> tuple[str, str]:
    """A stapled response judged as ``interpret_response`` does (no network); the detail
    starts with "stapled: ". Only "good" and "revoked" are final; on "unknown" the caller
    asks the responder instead."""
    status, detail = interpret_response(der, leaf, issuer, now)
    return (status, f"stapled: {detail or status}")


async def _responder_address(
    host: str, port: int, resolve: Mapping[tuple[str, int], Sequence[str]]
) -> list[str]:
    override = resolve.get((host, port))
    if override is not None:
        return list(override)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, proto=6)
    return [str(info[4][0]) for info in infos]


async def _post(url: str, body: bytes, addresses: list[str], port: int) -> bytes:
    parts = urlsplit(url)
    path = parts.path or "/"
    reader, writer = await asyncio.open_connection(addresses[0], port)
    try:
        head = (
            f"POST {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/ocsp-request\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        raw = await reader.read(_MAX_RESPONSE)
        while len(raw) < _MAX_RESPONSE and (chunk := await reader.read(_MAX_RESPONSE)):
            raw += chunk
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = raw.partition(b"\r\n")
    if b" 200 " not in status_line + b" ":
        raise OSError(f"responder answered {status_line[:80]!r}")
    return rest.partition(b"\r\n\r\n")[2]


async def _query(
    url: str,
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    resolve: Mapping[tuple[str, int], Sequence[str]],
    allow_networks: Sequence[Network],
) -> tuple[str, str | None]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return (UNKNOWN, f"unsupported OCSP URL {url}")
    port = parts.port or 80
    addresses = await _responder_address(parts.hostname, port, resolve)
    allowed = [a for a in addresses if refusal_reason(a, allow_networks) is None]
    if not allowed:
        return (UNKNOWN, f"OCSP responder {parts.hostname} has no allowed address")
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    body = await _post(url, request.public_bytes(Encoding.DER), allowed, port)
    return interpret_response(body, leaf, issuer, datetime.now(UTC))


async def check_revocation(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    urls: Sequence[str],
    *,
    resolve: Mapping[tuple[str, int], Sequence[str]],
    allow_networks: Sequence[Network],
    timeout: float,
) -> tuple[str, str | None]:
    """ "good", "revoked" or "unknown" with a detail; never raises, bounded by ``timeout``."""
    key = (
        issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        leaf.serial_number,
    )
    cached = _cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return (cached[1], cached[2])
    result: tuple[str, str | None] = (UNKNOWN, "no OCSP responder URL")
    for url in urls[:2]:
        try:
            async with asyncio.timeout(timeout):
                result = await _query(url, leaf, issuer, resolve, allow_networks)
        except (TimeoutError, OSError, ValueError, UnicodeError) as exc:
            result = (UNKNOWN, f"OCSP query to {url} failed: {exc or type(exc).__name__}")
        if result[0] != UNKNOWN:
            break
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = (time.monotonic() + CACHE_TTL_S, *result)
    return result
