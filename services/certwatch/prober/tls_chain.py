"""Drive a probe's TLS handshake, and read the certificate chain the server presented.

The handshake is the bulk of a probe's CPU time, so it is driven directly on the OpenSSL
that ``cryptography`` bundles (through its cffi binding, as pyOpenSSL does): a plain TCP
transport feeds an ``SSL`` object over memory BIOs, with no asyncio SSL protocol and no
``ssl.SSLObject`` in between. That OpenSSL is also far newer than the system's (3.0 on
Debian 12), whose provider lookups make every client handshake about a third dearer.
Where the binding lacks a function we need, ``NATIVE`` is False and callers use the
standard library (``presented_chain`` on an ``ssl.SSLObject``).

The handshake asks for a stapled OCSP response (the status_request extension) and
``Handshake.stapled_ocsp()`` hands it over. The stdlib cannot: ``ssl`` neither requests nor
exposes a staple, so on that fallback path revocation always comes from the certificate's
OCSP responder.

The stdlib exposes the unverified peer chain publicly only from Python 3.13
(``SSLObject.get_unverified_chain()`` returning DER bytes); 3.10-3.12 have the same call
on the private ``_sslobj`` returning certificate objects. This is the one place that knows.
"""

from __future__ import annotations

import _ssl
import asyncio
import logging
import ssl
from typing import Any

__all__ = ["NATIVE", "Handshake", "TLSHandshakeError", "log_driver", "presented_chain"]

log = logging.getLogger(__name__)


def presented_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """DER encodings of every certificate the peer sent, leaf first (may be empty)."""
    public = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:
        return [bytes(der) for der in public() or ()]
    private: Any = getattr(ssl_object, "_sslobj", None)
    certs = private.get_unverified_chain() if private is not None else None
    if certs:
        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in certs]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


class TLSHandshakeError(ssl.SSLError):
    """A handshake refused by OpenSSL; ``reason`` is spelled as ``ssl.SSLError``'s
    (``WRONG_VERSION_NUMBER``), so callers judge both drivers alike."""

    def __init__(self, reason: str | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason or ""
        self.library = "SSL"


_NEEDED = (
    "SSL_CTX_new", "TLS_method", "SSL_CTX_set_verify", "SSL_CTX_set_options",
    "SSL_CTX_set_cipher_list", "SSL_CTX_set_min_proto_version",
    "SSL_CTX_set1_curves_list", "SSL_new", "SSL_free", "SSL_set_bio", "SSL_set_connect_state",
    "SSL_set_tlsext_host_name", "SSL_do_handshake", "SSL_get_error", "SSL_get_version",
    "SSL_get_current_cipher", "SSL_CIPHER_get_name", "SSL_get_peer_cert_chain", "sk_X509_num", "SSL_CTX_free",
    "sk_X509_value", "i2d_X509_bio", "BIO_new", "BIO_s_mem", "BIO_read", "BIO_write",
    "BIO_free", "ERR_get_error", "ERR_reason_error_string", "ERR_clear_error",
    "SSL_set_tlsext_status_type", "TLSEXT_STATUSTYPE_ocsp", "SSL_get_tlsext_status_ocsp_resp",
)  # fmt: skip
# What the system OpenSSL 3.0 offers by default: one X25519 key share, no hybrid PQ share
# (it costs a key generation per probe, and few servers would pick it).
_GROUPS = b"X25519:secp256r1:X448:secp521r1:secp384r1:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"
_CHUNK = 16_640  # a TLS record and then some


def _load() -> tuple[tuple[Any, Any, Any] | None, str | None]:
    """((lib, ffi, SSL_CTX) accepting any certificate and any protocol version, None), or
    (None, why the stdlib driver is used instead)."""
    try:
        from cryptography.hazmat.bindings.openssl.binding import Binding

        lib, ffi = Binding.lib, Binding.ffi
        missing = [name for name in _NEEDED if not hasattr(lib, name)]
        if missing:
            return None, f"cryptography's OpenSSL binding lacks {', '.join(missing[:3])}"
        ctx = lib.SSL_CTX_new(lib.TLS_method())
        if ctx == ffi.NULL:
            return None, "SSL_CTX_new failed"
        ctx = ffi.gc(ctx, lib.SSL_CTX_free)
        lib.SSL_CTX_set_verify(ctx, lib.SSL_VERIFY_NONE, ffi.NULL)
        # As ssl.SSLContext does, plus no session tickets (every probe is a full handshake).
        options = (lib.SSL_OP_ALL & ~lib.SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS) | lib.SSL_OP_NO_COMPRESSION
        lib.SSL_CTX_set_options(ctx, options | lib.SSL_OP_NO_TICKET)
        # @SECLEVEL=0 and the lowest version: observe SHA-1, RSA-1024 and TLS 1.0 servers.
        if lib.SSL_CTX_set_cipher_list(ctx, b"ALL:@SECLEVEL=0") != 1:
            return None, "the cipher list ALL:@SECLEVEL=0 was refused"
        lib.SSL_CTX_set_min_proto_version(ctx, 0)
        lib.SSL_CTX_set1_curves_list(ctx, _GROUPS)
        lib.ERR_clear_error()
    except Exception as exc:  # any surprise in the binding: use the stdlib instead
        return None, f"{type(exc).__name__}: {exc}"
    return (lib, ffi, ctx), None


_NATIVE, _WHY_STDLIB = _load()
NATIVE = _NATIVE is not None


def log_driver() -> None:
    """Say which TLS driver probes use, once at start: the stdlib fallback is slower and
    sees no stapled OCSP responses, which an operator should know rather than guess."""
    if _WHY_STDLIB is None:
        log.info("TLS driver: OpenSSL through cryptography's binding")
    else:
        log.warning(
            "TLS driver: the standard library's ssl (%s); handshakes cost more and stapled OCSP"
            " responses are not seen, so revocation comes from each certificate's responder",
            _WHY_STDLIB,
        )


def _error(lib: Any, ffi: Any, fallback: str) -> TLSHandshakeError:
    code, last = lib.ERR_get_error(), 0
    while code:  # the earliest error is the cause; keep the last one's reason
        last, code = code, lib.ERR_get_error()
    text = lib.ERR_reason_error_string(last) if last else ffi.NULL
    if text == ffi.NULL:
        return TLSHandshakeError(None, fallback)
    reason = ffi.string(text).decode("ascii", "replace")
    return TLSHandshakeError(reason.upper().replace(" ", "_"), reason)


class Handshake(asyncio.Protocol):
    """A TCP connection's protocol that runs one client TLS handshake and nothing else.

    ``loop.create_connection(Handshake, ip, port)``, then ``await start(server_name)``;
    afterwards ``version``, ``cipher``, ``chain()`` and ``stapled_ocsp()`` describe the
    session (read them before ``close()``, which frees what they come from). ``close()``
    aborts the connection (no close_notify: nothing was sent) and frees the SSL object.
    """

    __slots__ = ("_buf", "_done", "_rbio", "_ssl", "_transport", "_wbio", "cipher", "version")

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._ssl: Any = None
        self._rbio: Any = None
        self._wbio: Any = None
        self._buf: Any = None
        self._done: asyncio.Future[None] | None = None
        self.version: str | None = None
        self.cipher: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def start(self, server_name: str | None) -> asyncio.Future[None]:
        """Send the ClientHello; the future completes with the handshake."""
        lib, ffi, ctx = _NATIVE  # type: ignore[misc]
        self._done = asyncio.get_running_loop().create_future()
        ssl_ = lib.SSL_new(ctx)
        if ssl_ == ffi.NULL:
            self._done.set_exception(_error(lib, ffi, "SSL_new failed"))
            return self._done
        self._ssl = ssl_
        self._rbio, self._wbio = lib.BIO_new(lib.BIO_s_mem()), lib.BIO_new(lib.BIO_s_mem())
        lib.SSL_set_bio(ssl_, self._rbio, self._wbio)  # the SSL object owns them now
        lib.SSL_set_connect_state(ssl_)
        if server_name:
            lib.SSL_set_tlsext_host_name(ssl_, server_name.encode("ascii"))
        # Ask for a stapled OCSP response; without a status callback OpenSSL only keeps it.
        lib.SSL_set_tlsext_status_type(ssl_, lib.TLSEXT_STATUSTYPE_ocsp)
        self._buf = ffi.new("char[]", _CHUNK)
        self._step()
        return self._done

    def data_received(self, data: bytes) -> None:
        if self._ssl is None or self._done is None or self._done.done():
            return
        _NATIVE[0].BIO_write(self._rbio, data, len(data))  # type: ignore[index]
        self._step()

    def eof_received(self) -> bool:
        self._fail(ConnectionResetError("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection lost"))

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _step(self) -> None:
        lib, ffi, _ = _NATIVE  # type: ignore[misc]
        ssl_, buf = self._ssl, self._buf
        lib.ERR_clear_error()  # the queue is per thread: start from a clean one
        result = lib.SSL_do_handshake(ssl_)
        wbio = self._wbio
        n = lib.BIO_read(wbio, buf, _CHUNK)
        while n > 0:
            if self._transport is not None:
                self._transport.write(ffi.buffer(buf, n)[:])
            n = lib.BIO_read(wbio, buf, _CHUNK)
        done = self._done
        assert done is not None
        if result == 1:
            self.version = ffi.string(lib.SSL_get_version(ssl_)).decode("ascii")
            cipher = lib.SSL_get_current_cipher(ssl_)
            if cipher != ffi.NULL:
                self.cipher = ffi.string(lib.SSL_CIPHER_get_name(cipher)).decode("ascii")
            done.set_result(None)
            return
        if lib.SSL_get_error(ssl_, result) != lib.SSL_ERROR_WANT_READ:
            done.set_exception(_error(lib, ffi, "TLS handshake failed"))

    def chain(self) -> list[bytes]:
        """DER encodings of every certificate the peer sent, leaf first (may be empty)."""
        lib, ffi, _ = _NATIVE  # type: ignore[misc]
        if self._ssl is None:
            return []
        stack = lib.SSL_get_peer_cert_chain(self._ssl)
        if stack == ffi.NULL:
            return []
        out: list[bytes] = []
        bio = lib.BIO_new(lib.BIO_s_mem())
        try:
            buf = self._buf
            for i in range(lib.sk_X509_num(stack)):
                lib.i2d_X509_bio(bio, lib.sk_X509_value(stack, i))
                parts = []
                n = lib.BIO_read(bio, buf, _CHUNK)
                while n > 0:
                    parts.append(ffi.buffer(buf, n)[:])
                    n = lib.BIO_read(bio, buf, _CHUNK)
                out.append(parts[0] if len(parts) == 1 else b"".join(parts))
        finally:
            lib.BIO_free(bio)
        return out

    def stapled_ocsp(self) -> bytes | None:
        """The DER OCSP response the server stapled to the handshake, or None (unverified:
        judge it with ``ocsp.interpret_response``)."""
        if self._ssl is None:
            return None
        lib, ffi, _ = _NATIVE  # type: ignore[misc]
        resp = ffi.new("unsigned char **")
        length = lib.SSL_get_tlsext_status_ocsp_resp(self._ssl, resp)
        if length <= 0 or resp[0] == ffi.NULL:
            return None
        return bytes(ffi.buffer(resp[0], length))  # a copy: the SSL object owns the original

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()
            self._transport = None
        if self._ssl is not None:
            _NATIVE[0].SSL_free(self._ssl)  # type: ignore[index]  # and both BIOs
            self._ssl = self._rbio = self._wbio = None
