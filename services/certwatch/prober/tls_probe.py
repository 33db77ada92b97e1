"""Probe host:port: DNS, then TCP + TLS (with SNI) on every resolved address at once.

The handshake accepts any certificate and any protocol version so that facts are always
collected, even from expired, self-signed or TLS 1.0-only servers; judging them is done
afterwards by ``chain_checks`` and ``ats``. A bad site never makes ``probe`` raise: every
failure becomes data (phase, kind, message, timings). Nothing but a TLS ClientHello is
sent: no HTTP request, body or credential.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

from cryptography import x509

from certwatch.platform import dns
from certwatch.prober.ats import ats_check, is_forward_secret
from certwatch.prober.cert_facts import ParsedCert, parse_der
from certwatch.prober.chain_checks import check_chain
from certwatch.prober.hostname import normalise_host, parse_ip
from certwatch.prober.netpolicy import refusal_reason
from certwatch.prober.ocsp import UNKNOWN, check_revocation, check_stapled
from certwatch.prober.options import ProbeOptions
from certwatch.prober.tls_chain import NATIVE, Handshake, presented_chain
from certwatch.prober.trust import load_anchors
from certwatch.rules.facts import (
    ERR_NO_TLS,
    ERR_POLICY,
    ERR_REFUSED,
    ERR_TIMEOUT,
    ERR_TLS,
    ERR_UNREACHABLE,
    PHASE_DONE,
    PHASE_POLICY,
    PHASE_TCP,
    PHASE_TLS,
    REVOKED,
    UNPARSABLE,
    AtsResult,
    CertFacts,
    ChainProblem,
    EndpointFacts,
    ProbeResult,
)
from certwatch.rules.validity import earliest_expiry

__all__ = ["ProbeOptions", "probe"]

# OpenSSL reasons meaning "the bytes that came back are not TLS at all".
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "UNKNOWN_PROTOCOL",
        "WRONG_SSL_VERSION",
    }
)


@lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext:
    """A context that completes a handshake with anything, built once per process.

    ``@SECLEVEL=0`` and the lowest protocol version let the probe *observe* SHA-1, RSA-1024
    and TLS 1.0 servers (then report them); no data is ever sent over the connection.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.options |= ssl.OP_NO_TICKET
    return context


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 2)


def _tls_failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLError) and (exc.reason or "") in _NOT_TLS_REASONS:
        return (ERR_NO_TLS, f"the port does not speak TLS ({exc.reason})")
    if isinstance(exc, ssl.SSLError):
        return (ERR_TLS, f"TLS handshake failed: {exc.reason or exc}")
    return (ERR_TLS, f"connection closed during TLS handshake: {exc or type(exc).__name__}")


async def _revocation(
    parsed: Sequence[ParsedCert],
    issuer: x509.Certificate,
    stapled: bytes | None,
    options: ProbeOptions,
    deadline: float,
) -> tuple[str | None, str | None]:
    """The leaf's OCSP status: a usable stapled response is final (no network); otherwise,
    or when it is unusable ("unknown"), the certificate's responder within the deadline."""
    staple: tuple[str, str] | None = None
    if stapled is not None:
        staple = check_stapled(stapled, parsed[0].cert, issuer, datetime.now(UTC))
        if staple[0] != UNKNOWN:
            return staple
    urls = parsed[0].facts.ocsp_urls
    if not urls:
        return staple if staple is not None else (None, None)
    remaining = deadline - asyncio.get_running_loop().time()
    status, detail = await check_revocation(
        parsed[0].cert,
        issuer,
        urls,
        resolve=options.resolve,
        allow_networks=options.allow_networks,
        timeout=max(0.01, min(options.ocsp_timeout, remaining)),
    )
    if staple is not None:  # say why the staple was passed over
        detail = f"{staple[1]}; responder: {detail or status}"
    return (status, detail)


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: a cache key below
class _Chain:
    """What a presented chain says whoever serves it and whenever: parsed once per chain."""

    parsed: tuple[ParsedCert, ...]
    unparsable: tuple[ChainProblem, ...]
    facts: tuple[CertFacts, ...]
    expiry: tuple[datetime, int] | None


_CHAINS_MAX = 8192
_chains: dict[tuple[bytes, ...], _Chain] = {}
_ders: dict[str, bytes] = {}  # fingerprint -> DER of every certificate in `_chains`


def der_of(sha256: str) -> bytes | None:
    """The DER of a certificate a recent probe was presented (for the certificate store)."""
    return _ders.get(sha256)


def _chain(ders: tuple[bytes, ...]) -> _Chain:
    """The parsed chain for these DER encodings, cached by them (bounded)."""
    cached = _chains.get(ders)
    if cached is not None:
        return cached
    parsed: list[ParsedCert] = []
    unparsable: list[ChainProblem] = []
    known: dict[str, bytes] = {}
    for index, der in enumerate(ders):
        try:
            parsed.append(parse_der(der))
            known[parsed[-1].facts.sha256] = der
        except ValueError as exc:
            unparsable.append(ChainProblem(UNPARSABLE, str(exc), index))
    facts = tuple(p.facts for p in parsed)
    chain = _Chain(tuple(parsed), tuple(unparsable), facts, earliest_expiry(facts))
    if len(_chains) >= _CHAINS_MAX:
        _chains.clear()
        _ders.clear()
    _chains[ders] = chain
    _ders.update(known)
    return chain


@lru_cache(maxsize=4096)
def _ats(version: str | None, cipher: str | None, chain: _Chain) -> AtsResult:
    return ats_check(version, cipher, chain.facts)


async def _facts_from_tls(
    host: str, ip: str, version: str | None, cipher: str | None, ders: tuple[bytes, ...],
    options: ProbeOptions, deadline: float, connect_ms: float | None = None,
    handshake_ms: float | None = None, stapled: bytes | None = None,
) -> EndpointFacts:  # fmt: skip
    chain = _chain(ders)
    parsed = chain.parsed
    ats = _ats(version, cipher, chain)
    forward_secret = is_forward_secret(version, cipher)
    if not parsed:
        return EndpointFacts(
            ip, PHASE_DONE, connect_ms=connect_ms, handshake_ms=handshake_ms, tls_version=version,
            cipher=cipher, forward_secret=forward_secret, problems=chain.unparsable, ats=ats,
        )  # fmt: skip
    report = check_chain(host, parsed, load_anchors(options.ca_file), datetime.now(UTC))
    ocsp_status: str | None = None
    ocsp_detail: str | None = None
    if options.check_ocsp and report.issuer is not None:
        ocsp_status, ocsp_detail = await _revocation(parsed, report.issuer, stapled, options, deadline)
    problems = chain.unparsable + report.problems if chain.unparsable else report.problems
    if ocsp_status == REVOKED:
        problems = (*problems, ChainProblem(REVOKED, ocsp_detail or "revoked", 0))
    expiry = chain.expiry
    return EndpointFacts(
        ip, PHASE_DONE, connect_ms=connect_ms, handshake_ms=handshake_ms, tls_version=version,
        cipher=cipher, forward_secret=forward_secret, chain=chain.facts, problems=problems,
        verified=report.verified and ocsp_status != REVOKED, verify_error=report.verify_error,
        earliest_expiry=expiry[0] if expiry else None,
        earliest_expiry_index=expiry[1] if expiry else None,
        path=report.path.indices, anchor=report.anchor, warnings=report.warnings,
        ocsp_status=ocsp_status, ocsp_detail=ocsp_detail, ats=ats,
    )  # fmt: skip


async def _probe_endpoint(
    host: str, port: int, ip: str, options: ProbeOptions, deadline: float
) -> EndpointFacts:
    reason = refusal_reason(ip, options.allow_networks)
    if reason is not None:
        return EndpointFacts(ip=ip, phase=PHASE_POLICY, error_kind=ERR_POLICY, error=reason)
    if NATIVE:
        return await _probe_native(host, port, ip, options, deadline)
    return await _probe_stdlib(host, port, ip, options, deadline)


P = TypeVar("P", bound=asyncio.BaseProtocol)
T = TypeVar("T")


async def _connect(
    factory: Callable[[], P], ip: str, port: int, timeout: float
) -> tuple[asyncio.Transport, P] | EndpointFacts:
    """The TCP phase of both handshake drivers; a failure comes back as the endpoint's facts."""
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await asyncio.get_running_loop().create_connection(factory, ip, port)
    except TimeoutError:
        return EndpointFacts(ip, PHASE_TCP, ERR_TIMEOUT, "TCP connect timed out")
    except ConnectionRefusedError:
        return EndpointFacts(ip, PHASE_TCP, ERR_REFUSED, "connection refused")
    except OSError as exc:
        return EndpointFacts(ip, PHASE_TCP, ERR_UNREACHABLE, str(exc) or type(exc).__name__)
    return transport, protocol


def _server_name(host: str) -> str | None:
    """The SNI to send: none for an IP literal (RFC 6066)."""
    return None if parse_ip(host) is not None else normalise_host(host)


async def _tls_phase(
    ip: str, connect_ms: float, timeout: float, handshake: Awaitable[T]
) -> T | EndpointFacts:
    """The TLS phase of both handshake drivers: what the handshake returns, or on failure
    the endpoint's facts."""
    try:
        async with asyncio.timeout(timeout):
            return await handshake
    except TimeoutError:
        return EndpointFacts(ip, PHASE_TLS, ERR_TIMEOUT, "TLS handshake timed out", connect_ms=connect_ms)
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        kind, message = _tls_failure(exc)
        return EndpointFacts(ip, PHASE_TLS, kind, message, connect_ms=connect_ms)


async def _probe_native(
    host: str, port: int, ip: str, options: ProbeOptions, deadline: float
) -> EndpointFacts:
    """TCP connect, then the handshake driven by ``tls_chain.Handshake`` (the fast path)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    protocol: Handshake | None = None
    try:
        opened = await _connect(Handshake, ip, port, min(options.connect_timeout, deadline - start))
        if isinstance(opened, EndpointFacts):
            return opened
        protocol = opened[1]
        connected = loop.time()
        connect_ms = _ms(start, connected)
        timeout = min(options.handshake_timeout, deadline - connected)
        failed = await _tls_phase(ip, connect_ms, timeout, protocol.start(_server_name(host)))
        if isinstance(failed, EndpointFacts):
            return failed
        handshake_ms = _ms(connected, loop.time())
        ders = tuple(protocol.chain())
        stapled = protocol.stapled_ocsp()
        protocol.close()  # before any OCSP wait: the connection has nothing more to give
        return await _facts_from_tls(
            host, ip, protocol.version, protocol.cipher, ders, options, deadline, connect_ms,
            handshake_ms, stapled,
        )  # fmt: skip
    finally:
        if protocol is not None:
            protocol.close()


async def _probe_stdlib(
    host: str, port: int, ip: str, options: ProbeOptions, deadline: float
) -> EndpointFacts:
    """The same with ``ssl.SSLContext`` (when cryptography's OpenSSL binding is unusable).

    ``ssl`` cannot request or expose a stapled OCSP response, so revocation here always
    comes from the certificate's OCSP responder."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    transport: asyncio.Transport | None = None
    try:
        opened = await _connect(asyncio.Protocol, ip, port, min(options.connect_timeout, deadline - start))
        if isinstance(opened, EndpointFacts):
            return opened
        transport, protocol = opened
        connected = loop.time()
        connect_ms = _ms(start, connected)
        timeout = min(options.handshake_timeout, deadline - connected)
        upgrade = loop.start_tls(transport, protocol, client_context(), server_hostname=_server_name(host))
        tls = await _tls_phase(ip, connect_ms, timeout, upgrade)
        if isinstance(tls, EndpointFacts):
            return tls
        handshake_ms = _ms(connected, loop.time())
        if tls is None:  # only when the loop is closing
            return EndpointFacts(ip, PHASE_TLS, ERR_TLS, "no TLS transport", connect_ms=connect_ms)
        try:
            ssl_object = tls.get_extra_info("ssl_object")
            cipher_info = ssl_object.cipher()
            return await _facts_from_tls(
                host, ip, ssl_object.version(), cipher_info[0] if cipher_info else None,
                tuple(presented_chain(ssl_object)), options, deadline, connect_ms, handshake_ms,
            )  # fmt: skip
        finally:
            tls.abort()
    finally:
        if transport is not None:
            transport.abort()


async def _resolve(
    host: str, port: int, options: ProbeOptions, timeout: float
) -> tuple[list[str], str | None]:
    """Addresses of host (A and AAAA) in resolver order, or why there are none."""
    if parse_ip(host) is not None:
        return ([host.strip("[]")], None)
    override = options.resolve.get((host, port))
    if override is None:
        override = options.resolve.get((normalise_host(host), port))
    if override is not None:
        return (list(override), None if override else "no address configured by override")
    name = normalise_host(host)
    if name == "invalid" or name.endswith(".invalid"):
        return ([], f"{name} cannot resolve: .invalid is reserved (RFC 6761)")
    if options.nameservers:
        return await dns.resolve(name, options.nameservers, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(
                name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except TimeoutError:
        return ([], "DNS resolution timed out")
    except (OSError, UnicodeError) as exc:
        return ([], f"DNS resolution failed: {exc}")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return (addresses, None if addresses else "no A or AAAA records")


async def probe(host: str, port: int, *, options: ProbeOptions | None = None) -> ProbeResult:
    """Probe every address of ``host`` on ``port``; failures are recorded, never raised."""
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    options = options or ProbeOptions()
    loop = asyncio.get_running_loop()
    started_at = datetime.now(UTC)
    start = loop.time()
    deadline = start + options.overall
    addresses, dns_error = await _resolve(host, port, options, options.overall)
    dns_ms = _ms(start, loop.time())
    addresses = addresses[: options.max_addresses]
    if len(addresses) == 1:  # the common case: no gather (a task and a future fewer)
        endpoints: Sequence[EndpointFacts] = (
            await _probe_endpoint(host, port, addresses[0], options, deadline),
        )
    else:
        endpoints = await asyncio.gather(
            *(_probe_endpoint(host, port, ip, options, deadline) for ip in addresses)
        )
    return ProbeResult(
        host=host,
        port=port,
        started_at=started_at,
        duration_ms=_ms(start, loop.time()),
        addresses=tuple(addresses),
        dns_error=dns_error,
        dns_ms=dns_ms if parse_ip(host) is None else None,
        endpoints=tuple(endpoints),
    )
