"""A tiny authoritative-style DNS server on loopback for resolver tests (UDP and TCP)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Iterator, Mapping

from certwatch.platform.dns import TYPE_A, TYPE_AAAA, TYPE_CNAME, _read_name, encode_name

Zone = Mapping[str, Mapping[str, object]]
"""name -> {"A": [...], "AAAA": [...], "CNAME": "target", "rcode": 2, "silent": True, "tc": True,
"drop_first": N (the first N UDP queries of each type are lost)}"""


def _answer(query: bytes, zone: Zone, *, over_tcp: bool) -> bytes | None:
    qid, _flags = struct.unpack("!HH", query[:4])
    name, offset = _read_name(query, 12)
    qtype = struct.unpack("!H", query[offset : offset + 2])[0]
    question = query[12 : offset + 4]
    entry = zone.get(name)
    if entry is not None and entry.get("silent"):
        return None
    rcode = 3 if entry is None else int(entry.get("rcode", 0))  # type: ignore[call-overload]
    flags = 0x8180 | rcode
    if entry is not None and entry.get("tc") and not over_tcp:
        return struct.pack("!HHHHHH", qid, flags | 0x0200, 1, 0, 0, 0) + question
    records = b""
    count = 0
    current = name
    for _ in range(8):
        node = zone.get(current) or {}
        target = node.get("CNAME")
        if not isinstance(target, str):
            break
        rdata = encode_name(target)
        records += encode_name(current) + struct.pack("!HHIH", TYPE_CNAME, 1, 60, len(rdata)) + rdata
        count += 1
        current = target
    node = zone.get(current) or {}
    key = {TYPE_A: "A", TYPE_AAAA: "AAAA"}.get(qtype)
    for address in node.get(key, ()) if key else ():  # type: ignore[attr-defined]
        rdata = ipaddress.ip_address(address).packed
        records += encode_name(current) + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
        count += 1
    return struct.pack("!HHHHHH", qid, flags, 1, count, 0, 0) + question + records


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None
        self._dropped: dict[bytes, int] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # This thread shares the GIL with the test's own loop: with the default buffer
        # (208 KiB) a burst of a prober's 256 queries overflowed it and lost ~1% of them.
        # The kernel caps it at net.core.rmem_max.
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        name, offset = _read_name(data, 12)
        drop = int((self.zone.get(name) or {}).get("drop_first", 0))  # type: ignore[call-overload]
        question = data[12 : offset + 4]
        if self._dropped.get(question, 0) < drop:  # a lossy network: this datagram is lost
            self._dropped[question] = self._dropped.get(question, 0) + 1
            return
        reply = _answer(data, self.zone, over_tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@contextlib.contextmanager
def dns_server(zone: Zone) -> Iterator[tuple[str, int]]:
    """Serve `zone` on 127.0.0.1 (UDP and TCP on the same free port); yields (ip, port)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def _tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = _answer(await reader.readexactly(length), zone, over_tcp=True)
            if reply is not None:
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        writer.close()

    async def _start() -> None:
        for _ in range(20):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            try:
                holder["tcp"] = await asyncio.start_server(_tcp, "127.0.0.1", port)
                holder["udp"], _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(zone), local_addr=("127.0.0.1", port)
                )
                holder["port"] = port
                return
            except OSError:
                continue
        raise OSError("no free port for the DNS server")

    def _run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("DNS server did not start")
    try:
        yield "127.0.0.1", int(holder["port"])  # type: ignore[call-overload]
    finally:

        async def _stop() -> None:
            holder["udp"].close()  # type: ignore[attr-defined]
            server = holder["tcp"]
            server.close()  # type: ignore[attr-defined]
            await server.wait_closed()  # type: ignore[attr-defined]

        asyncio.run_coroutine_threadsafe(_stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class SuffixZone(Mapping[str, Mapping[str, object]]):
    """Every name under `suffix` has the same records: for thousands of test domains that a
    zone dict (or the environment, for CERTWATCH_RESOLVE) would be too big to hold."""

    def __init__(self, suffix: str, records: Mapping[str, object]) -> None:
        self._suffix = suffix.lower().strip(".")
        self._records = records

    def __getitem__(self, name: str) -> Mapping[str, object]:
        if name.lower().rstrip(".").endswith("." + self._suffix):
            return self._records
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
