"""Load for failure tests: domains added and enabled in batches through the real inventory
API until stopped, and the statuses they end with."""

from __future__ import annotations

import asyncio

import grpc

from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.stack import Stack

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
