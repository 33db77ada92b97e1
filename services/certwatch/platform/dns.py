"""A small DNS stub resolver (A, AAAA, the CNAME chain) for configured nameservers.

Used instead of the system resolver when nameservers are configured (probes, CNAME
checks): monitoring should see what the public sees, not what an internal resolver or
/etc/hosts says. UDP first, TCP when the answer is truncated; replies must match our id
and question; nameservers are tried in order, each with its share of the timeout. Failure
is data: the caller gets an error text, never an exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
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
UDP_ATTEMPTS = 3  # sends of one query over UDP within its timeout

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


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.replies.put_nowait(data)


async def _udp(
    server: Nameserver, query: bytes, query_id: int, name: str, qtype: int, timeout: float
) -> tuple[bool, Answer]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_UdpClient, remote_addr=server)
    resend = asyncio.create_task(_retransmit(transport, query, timeout))
    try:
        async with asyncio.timeout(timeout):
            for _ in range(16):  # ignore a few stray or spoofed datagrams
                data = await protocol.replies.get()
                try:
                    return parse_response(data, query_id, name, qtype)
                except DnsError as exc:
                    if "mismatch" in str(exc) or "another question" in str(exc):
                        continue
                    raise
        raise DnsError("too many unrelated replies")
    finally:
        resend.cancel()
        transport.close()


async def _retransmit(transport: asyncio.DatagramTransport, query: bytes, timeout: float) -> None:
    """Send the query, and again twice within the time allowed, as stub resolvers do
    (glibc's `attempts`): one lost datagram must not make a domain `INVALID_IP`."""
    for _ in range(UDP_ATTEMPTS):
        transport.sendto(query)
        await asyncio.sleep(timeout / UDP_ATTEMPTS)


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


async def query(server: Nameserver, name: str, qtype: int, timeout: float) -> Answer:
    query_id = secrets.randbelow(65536)
    packet = build_query(name, qtype, query_id)
    truncated, answer = await _udp(server, packet, query_id, name, qtype, timeout)
    if truncated:
        return await _tcp(server, packet, query_id, name, qtype, timeout)
    return answer


async def resolve(
    name: str, nameservers: Sequence[Nameserver], *, timeout: float
) -> tuple[list[str], str | None]:
    """A and AAAA addresses of `name` from the first nameserver that answers, or why none."""
    if not nameservers:
        return [], "no nameservers configured"
    share = timeout / len(nameservers)
    problem = "no answer"
    for server in nameservers:
        results = await asyncio.gather(
            query(server, name, TYPE_A, share), query(server, name, TYPE_AAAA, share),
            return_exceptions=True,
        )  # fmt: skip
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
