"""Load for failure tests: domains added and enabled in batches through the real inventory
API until stopped, and the statuses they end with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import replace

import grpc

from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.dns_server import SuffixZone, dns_server
from tests.support.pki import TestPKI
from tests.support.stack import Stack
from tests.support.tls_server import server_context, tls_server

BATCH = 8  # domains per AddDomains call
PAUSE_S = 0.4  # between calls
MAX_BATCHES = 10_000
UNITS = BATCH * MAX_BATCHES  # quota enough for every domain the load can add


class Load:
    """Adds `BATCH` hosts under `suffix` per call. With `tolerate_failures`, a call that fails
    (the database is down) is recorded in `failed` and the load goes on with the next batch;
    otherwise it raises."""

    def __init__(self, stack: Stack, suffix: str, port: int, *, tolerate_failures: bool = False) -> None:
        self._stack = stack
        self._suffix = suffix
        self._port = port
        self._tolerate = tolerate_failures
        self.added: list[str] = []
        self.failed: list[list[str]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with self._stack.channel("inventory") as channel:
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            for n in range(MAX_BATCHES):
                if self._stop.is_set():
                    return
                hosts = [f"d{n:04d}x{i}.{self._suffix}" for i in range(BATCH)]
                request = pb.AddDomainsRequest(
                    domains=",".join(f"{h}:{self._port}" for h in hosts), enable=True
                )
                try:
                    added = await inventory.AddDomains(request, metadata=self._stack.metadata, timeout=30)
                except grpc.aio.AioRpcError:
                    if not self._tolerate:
                        raise
                    self.failed.append(hosts)
                else:
                    assert [r.error for r in added.results if not r.added] == []
                    self.added += hosts
                await asyncio.sleep(PAUSE_S)

    def stop(self) -> None:
        self._stop.set()


async def statuses(stack: Stack) -> dict[str, str]:
    """Every domain of the stack's account: host -> status."""
    seen: dict[str, str] = {}
    async with stack.channel("inventory") as channel:
        inventory = inventory_pb2_grpc.InventoryStub(channel)
        token = ""
        for _ in range(100):
            page = await inventory.ListDomains(
                pb.ListDomainsRequest(page_size=1000, page_token=token), metadata=stack.metadata, timeout=10
            )
            seen.update((d.host, d.status) for d in page.domains)
            token = page.next_page_token
            if not token:
                break
    return seen


@contextlib.contextmanager
def wildcard_targets(
    settings: Settings, pki: TestPKI, zone: str, database_url: str
) -> Iterator[tuple[Settings, int]]:
    """Every name under `zone` served by one TLS server (a wildcard certificate) and resolved to
    it by a loopback DNS server: the settings that use both (and `database_url`), and its port."""
    files = pki.server_files(pki.leaf(f"*.{zone}", dns=(f"*.{zone}",), org=f"{zone} Org"))
    with tls_server(server_context(*files)) as port, dns_server(SuffixZone(zone, {"A": ["127.0.0.1"]})) as ns:
        yield replace(settings, database_url=database_url, dns_servers=(f"{ns[0]}:{ns[1]}",),
                      probe_handshake_timeout_s=5), port  # fmt: skip
