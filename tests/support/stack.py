"""The whole certwatch stack in one test process: all six services, real servers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import grpc

from certwatch.contracts import quota as qc
from certwatch.platform import auth, db
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.localstack import free_port
from certwatch.platform.service import Service
from certwatch.platform.shredding import new_master_key
from certwatch.services import MIGRATIONS, PORTS, build_for


@dataclass
class Stack:
    settings: Settings
    services: dict[str, Service]
    api_key: str
    account_id: str

    def channel(self, service: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.services[service].port}")

    @property
    def vod_endpoint(self) -> str:
        """HOST:PORT of the VOD HTTP API, as the Alibaba Cloud SDK's `Config(endpoint=...)` takes it."""
        return f"127.0.0.1:{self.settings.vod_http_port}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)


async def new_account(database_url: str, name: str, *, units: int = 100) -> tuple[str, str]:
    """An account with `units` of monitoring quota; returns (account id, API key)."""
    pool = await db.open_pool(database_url, migrate=MIGRATIONS)
    try:
        account_id, key = await auth.create_account(pool, name)
        if units:
            await EventLog(pool).append(
                qc.stream_id(account_id),
                [NewEvent(qc.QUOTA_PURCHASED, {"account_id": str(account_id), "units": units})],
                expected_version=None,
            )
    finally:
        await pool.close()
    return str(account_id), key


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, names: tuple[str, ...] = tuple(PORTS), *, units: int = 100
) -> AsyncIterator[Stack]:
    ports = {name: free_port() for name in PORTS}
    settings = replace(settings, grpc_ports=ports, vod_http_port=free_port(),
                       master_key=settings.master_key or new_master_key())  # fmt: skip
    account_id, key = await new_account(settings.database_url, f"acct-{time.monotonic_ns()}", units=units)
    services = {name: Service(name, settings, build_for(name), migrations=MIGRATIONS) for name in names}
    started: list[Service] = []
    try:
        for service in services.values():
            started.append(service)  # stopped even if its start fails half-way (pool, bus, a bound port)
            await service.start()
        yield Stack(settings, services, key, account_id)
    finally:
        await asyncio.gather(*(s.stop() for s in started), return_exceptions=True)


async def wait_for(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
