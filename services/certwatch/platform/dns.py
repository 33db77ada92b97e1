"""A small DNS stub resolver (A, AAAA, the CNAME chain) for configured nameservers.

Used instead of the system resolver when nameservers are configured (probes, CNAME
checks): monitoring should see what the public sees, not what an internal resolver or
/etc/hosts says. UDP first, TCP when the answer is truncated; replies must match our id
and question; nameservers are tried in order, each with its share of the timeout. Failure
is data: the caller gets an error text, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
_CLASS_IN = 1
_FLAG_RD = 0x0100
_FLAG_TC = 0x0200
_RCODES = {1: "format error", 2: "server failure", 3: "name does not exist", 4: "not implemented",
           5: "refused"}  # fmt: skip
_MAX_UDP = 4096
_MAX_CNAME_HOPS = 8
UDP_ATTEMPTS = 3  # sends of one query over UDP at least, within its timeout
# The first resend waits at most this long, each later one twice the one before (as
# stub resolvers back off): a lost datagram costs a second, not a third of the timeout.
RESEND_AFTER_S = 1.0
_MAX_SENDS = 6

Nameserver = tuple[str, int]


class DnsError(Exception):
    """A definite answer of failure (NXDOMAIN, SERVFAIL, malformed reply)."""


@dataclass(frozen=True, slots=True)
class Answer:
    addresses: tuple[str, ...]
    cnames: tuple[str, ...]


def parse_nameserver(text: str) -> Nameserver:
    """`IP`, `IP:PORT` or `[IPv6]:PORT` → (ip, port); port 53 by default."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"nameserver {text!r}: expected IP, IP:PORT or [IPv6]:PORT")
        port = rest[1:] or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise ValueError(f"nameserver {text!r}: expected IP, IP:PORT or [IPv6]:PORT") from exc
    if not 0 < number < 65536:
        raise ValueError(f"nameserver {text!r}: port out of range")
    return host, number


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise DnsError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\x00"


def build_query(name: str, qtype: int, query_id: int) -> bytes:
    return (
        struct.pack("!HHHHHH", query_id, _FLAG_RD, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", qtype, _CLASS_IN)
    )


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    for _ in range(128):  # bounded: compression loops are malformed input
        if offset >= len(data):
            raise DnsError("truncated name")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsError("truncated pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length == 0:
            return ".".join(labels).lower(), end if end is not None else offset + 1
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise DnsError("name compression loop")


def parse_response(data: bytes, query_id: int, name: str, qtype: int) -> tuple[bool, Answer]:
    """(truncated, answer) for our query; raises DnsError for a definite failure."""
    if len(data) < 12:
        raise DnsError("short reply")
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != query_id:
        raise DnsError("reply id mismatch")
    offset = 12
    for _ in range(qd):
        qname, offset = _read_name(data, offset)
        rtype = struct.unpack("!H", data[offset : offset + 2])[0]
        offset += 4
        if qname != name.lower().rstrip(".") or rtype != qtype:
            raise DnsError("reply is for another question")
    if flags & _FLAG_TC:
        return True, Answer((), ())
    rcode = flags & 0x000F
    if rcode:
        raise DnsError(_RCODES.get(rcode, f"rcode {rcode}"))
    records: list[tuple[str, int, bytes | str]] = []
    for _ in range(an):
        owner, offset = _read_name(data, offset)
        if offset + 10 > len(data):
            raise DnsError("truncated record")
        rtype, _, _, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        rdata = data[offset : offset + rdlength]
        if rtype == TYPE_CNAME:
            records.append((owner, rtype, _read_name(data, offset)[0]))
        else:
            records.append((owner, rtype, rdata))
        offset += rdlength
    return False, _follow(records, name.lower().rstrip("."), qtype)


def _follow(records: list[tuple[str, int, bytes | str]], name: str, qtype: int) -> Answer:
    """Addresses for `name`, following the CNAME chain inside the answer section."""
    cnames: list[str] = []
    current = name
    for _ in range(_MAX_CNAME_HOPS):
        target = next((r for o, t, r in records if o == current and t == TYPE_CNAME), None)
        if not isinstance(target, str):
            break
        cnames.append(target)
        current = target
    addresses = []
    for owner, rtype, rdata in records:
        if owner == current and rtype == qtype and isinstance(rdata, bytes):
            if rtype == TYPE_A and len(rdata) == 4:
                addresses.append(str(ipaddress.IPv4Address(rdata)))
            elif rtype == TYPE_AAAA and len(rdata) == 16:
                addresses.append(str(ipaddress.IPv6Address(rdata)))
    return Answer(tuple(addresses), tuple(cnames))


@dataclass
class _Pending:
    query: bytes
    name: str
    qtype: int
    answered: asyncio.Future[tuple[bool, Answer]]
    waits: list[float]
    resend: asyncio.TimerHandle | None = None


class _UdpSocket:
    """A connected UDP socket for the queries of one lookup (its A and AAAA at once, as
    glibc sends them), on a fresh source port (RFC 5452): each query sent, sent again on a
    timer, answered by the first reply with its id and question (stray or spoofed
    datagrams are ignored, a few of them).

    Read by `add_reader`, not by an asyncio datagram transport: an endpoint made with
    `remote_addr` resolves that address, and with its Queue and resend Task, and a socket a
    query, a lookup cost 290 us of CPU (4,000 lookups, 128 at once), a third of a whole TLS
    probe; now ~190, most of it the kernel making and connecting the socket."""

    def __init__(self, server: Nameserver) -> None:
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, _Pending] = {}
        self._strays = 0
        self._sock = socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            self._sock.connect(server)  # sets the peer only: the kernel drops other senders' datagrams
            self._loop.add_reader(self._sock.fileno(), self._readable)
        except BaseException:
            self._sock.close()
            raise

    def new_id(self) -> int:
        """A random query id (RFC 5452) that no query of this socket has."""
        for _ in range(64):
            query_id = _query_id()
            if query_id not in self._pending:
                return query_id
        raise DnsError("no free query id")

    def ask(
        self, query: bytes, query_id: int, name: str, qtype: int, timeout: float
    ) -> asyncio.Future[tuple[bool, Answer]]:
        pending = _Pending(query, name, qtype, self._loop.create_future(), resend_waits(timeout))
        self._pending[query_id] = pending
        self._sock.send(query)
        self._schedule(pending)
        return pending.answered

    def close(self) -> None:
        for pending in self._pending.values():
            if pending.resend is not None:
                pending.resend.cancel()
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _schedule(self, pending: _Pending) -> None:
        if pending.waits:
            pending.resend = self._loop.call_later(pending.waits.pop(0), self._send_again, pending)

    def _send_again(self, pending: _Pending) -> None:
        if not pending.answered.done():
            with contextlib.suppress(OSError):  # a resend lost here is one more lost datagram
                self._sock.send(pending.query)
            self._schedule(pending)

    def _readable(self) -> None:
        for _ in range(16):  # what is queued now, bounded
            try:
                data = self._sock.recv(_MAX_UDP)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error for an earlier send: keep waiting, as for a loss
                return
            query_id = struct.unpack("!H", data[:2])[0] if len(data) >= 12 else -1
            pending = self._pending.get(query_id)
            if pending is None or pending.answered.done():
                self._stray()
                continue
            try:
                pending.answered.set_result(parse_response(data, query_id, pending.name, pending.qtype))
            except DnsError as exc:
                if "another question" in str(exc):
                    self._stray()
                    continue
                pending.answered.set_exception(exc)

    def _stray(self) -> None:
        self._strays += 1
        if self._strays >= 16:
            for pending in self._pending.values():
                if not pending.answered.done():
                    pending.answered.set_exception(DnsError("too many unrelated replies"))


def resend_waits(timeout: float) -> list[float]:
    """The waits between the sends of one query: doubling from at most `RESEND_AFTER_S`,
    short enough that `UDP_ATTEMPTS` sends fit in `timeout`, none past it. One lost
    datagram must not make a domain `INVALID_IP`, nor hold a probe for seconds: with the
    12 s a probe allows, a query went out again only after 4 s, so the 1% a busy resolver
    drops were each a probe 4 s late."""
    wait = min(RESEND_AFTER_S, timeout / (2**UDP_ATTEMPTS - 1))
    waits: list[float] = []
    elapsed = 0.0
    for _ in range(_MAX_SENDS - 1):
        elapsed += wait
        if elapsed >= timeout:
            break
        waits.append(wait)
        wait *= 2
    return waits


async def _tcp(
    server: Nameserver, query: bytes, query_id: int, name: str, qtype: int, timeout: float
) -> Answer:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(*server)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            data = await reader.readexactly(length)
        finally:
            writer.close()
    truncated, answer = parse_response(data, query_id, name, qtype)
    if truncated:
        raise DnsError("truncated over TCP")
    return answer


async def query(
    server: Nameserver, name: str, qtype: int, timeout: float, *, udp: _UdpSocket | None = None
) -> Answer:
    """One question to `server`: over UDP (on `udp`, or a socket of its own), over TCP when
    the answer is truncated."""
    own = udp is None
    sock = _UdpSocket(server) if udp is None else udp
    query_id = sock.new_id()
    packet = build_query(name, qtype, query_id)
    try:
        truncated, answer = await asyncio.wait_for(sock.ask(packet, query_id, name, qtype, timeout), timeout)
    finally:
        if own:
            sock.close()
    if truncated:
        return await _tcp(server, packet, query_id, name, qtype, timeout)
    return answer


_ids: list[int] = []


def _query_id() -> int:
    """A random query id (RFC 5452), drawn from the OS 256 at a time: urandom is a system
    call, 9 us here, and a lookup asks twice."""
    if not _ids:
        raw = secrets.token_bytes(512)
        _ids.extend(struct.unpack("!256H", raw))
    return _ids.pop()


async def resolve(
    name: str, nameservers: Sequence[Nameserver], *, timeout: float
) -> tuple[list[str], str | None]:
    """A and AAAA addresses of `name` from the first nameserver that answers, or why none."""
    if not nameservers:
        return [], "no nameservers configured"
    share = timeout / len(nameservers)
    problem = "no answer"
    for server in nameservers:
        try:
            udp = _UdpSocket(server)
        except OSError as exc:
            problem = str(exc)
            continue
        try:
            results = await asyncio.gather(
                query(server, name, TYPE_A, share, udp=udp), query(server, name, TYPE_AAAA, share, udp=udp),
                return_exceptions=True,
            )  # fmt: skip
        finally:
            udp.close()
        addresses = [a for r in results if isinstance(r, Answer) for a in r.addresses]
        if addresses:
            return list(dict.fromkeys(addresses)), None
        failures = [r for r in results if isinstance(r, BaseException)]
        if any(isinstance(f, DnsError) and "does not exist" in str(f) for f in failures):
            return [], f"DNS: {name} does not exist (NXDOMAIN from {server[0]})"
        if not failures:
            return [], f"DNS: {name} has no A or AAAA records"
        first = failures[0]
        problem = f"{server[0]} did not answer in time" if isinstance(first, TimeoutError) else str(first)
    return [], f"DNS resolution failed: {problem}"
