"""A local OCSP responder (RFC 6960 over HTTP POST) built with cryptography.

It answers for certificates issued by one issuer, from a serial -> status table the test
controls, and signs with the issuer's own key (no delegated signer), which is what the
probe must accept. Unknown serials get "unknown".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ReasonFlags, ocsp

from tests.support.pki import Issued
from tests.support.tls_server import serve

_TIMEOUT = 5.0


@dataclass
class OcspResponder:
    issuer: Issued
    revoked: set[int] = field(default_factory=set)
    good: set[int] = field(default_factory=set)
    requests: int = 0

    def answer(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        serial = request.serial_number
        now = datetime.now(UTC)
        builder = ocsp.OCSPResponseBuilder()
        if serial in self.revoked or serial in self.good:
            status = ocsp.OCSPCertStatus.REVOKED if serial in self.revoked else ocsp.OCSPCertStatus.GOOD
            revoked = serial in self.revoked
            builder = builder.add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=serial,
                algorithm=request.hash_algorithm,
                cert_status=status,
                this_update=now - timedelta(minutes=1),
                next_update=now + timedelta(hours=1),
                revocation_time=now - timedelta(hours=1) if revoked else None,
                revocation_reason=ReasonFlags.key_compromise if revoked else None,
            )
        else:
            builder = builder.add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=serial,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.UNKNOWN,
                this_update=now - timedelta(minutes=1),
                next_update=now + timedelta(hours=1),
                revocation_time=None,
                revocation_reason=None,
            )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuer.cert)
        response = builder.sign(self.issuer.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            async with asyncio.timeout(_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(min(length, 65536))
                self.requests += 1
                payload = self.answer(body)
                writer.write(
                    b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()


@contextlib.contextmanager
def ocsp_responder(issuer: Issued, host: str = "127.0.0.1") -> Iterator[tuple[OcspResponder, int]]:
    """Run a responder for ``issuer``; yields (responder, port)."""
    responder = OcspResponder(issuer)
    with serve(responder.handle, host, 0, None) as port:
        yield (responder, port)
