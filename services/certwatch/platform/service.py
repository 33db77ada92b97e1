"""One bootstrap per process: build every dependency, run until SIGTERM, stop gracefully.

Stopping order matters: health goes NOT_SERVING, the gRPC server lets in-flight calls finish,
background workers and projection runners finish their current batch (they ack only what
they committed), then NATS drains and the pool closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import auth, db, heap, logs, ops_api, telemetry
from certwatch.platform import bus as busmod
from certwatch.platform.config import ConfigError, Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.grpc_server import GrpcServer, Registration
from certwatch.platform.lag_metrics import LagSampler
from certwatch.platform.outbox import OutboxRelay
from certwatch.platform.projection import Projection, ProjectionRunner

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a service's `build` gets to wire its handlers with."""

    name: str
    settings: Settings
    pool: AsyncConnectionPool[Any]
    event_log: EventLog
    bus: busmod.Bus | None


class Worker(Protocol):
    async def run(self) -> None: ...
    def stop(self) -> None: ...


class HttpEdge(Worker, Protocol):
    """A service whose edge is HTTP rather than gRPC: it listens on the service's port, where
    a gRPC server would, and reports the service's health at a path of its own."""

    @property
    def port(self) -> int: ...

    async def listening(self) -> None: ...
    def set_serving(self, serving: bool) -> None: ...


@dataclass
class Parts:
    registrations: Sequence[Registration] = ()
    projections: Sequence[Projection] = ()
    workers: Sequence[Worker] = ()
    on_stop: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Instead of a gRPC server: an HTTP edge started on (host, the service's port).
    http: Callable[[str, int], HttpEdge] | None = None
    # Seconds before this service's outbox relay first bids for leadership: a service whose
    # CPU is the system's critical path (probing, say) leaves relaying to the others
    # and takes it over only when none of them relays.
    relay_standby_s: float = 0.0


Build = Callable[[Runtime], Awaitable[Parts]]


class Service:
    """A running service: start() returns once it is listening; stop() is graceful."""

    def __init__(
        self, name: str, settings: Settings, build: Build, *, port: int | None = None,
        migrations: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """`migrations`: the schema components applied (if pending) before the service starts."""
        self.name = name
        self._migrations = tuple(migrations)
        self.settings = settings
        self._build = build
        self._port = settings.grpc_ports[name] if port is None else port
        self._tasks: list[asyncio.Task[None]] = []
        self._stoppables: list[Worker] = []
        self.server: GrpcServer | None = None
        self.http: HttpEdge | None = None
        self.verifier: auth.KeyVerifier | None = None
        self.runtime: Runtime | None = None
        self._parts: Parts | None = None
        self.serving = False

    @property
    def port(self) -> int:
        if self.http is not None:
            return self.http.port
        return self.server.port if self.server else self._port

    async def start(self) -> None:
        s = self.settings
        pool = await db.open_pool(s.database_url, max_size=20, migrate=self._migrations)
        bus = await busmod.connect(s.nats_url, name=f"certwatch-{self.name}", replicas=s.stream_replicas)
        event_log = EventLog(pool)
        self.runtime = Runtime(self.name, s, pool, event_log, bus)
        parts = self._parts = await self._build(self.runtime)
        relay = OutboxRelay(event_log, bus, s.database_url, standby_s=parts.relay_standby_s)
        runners = [ProjectionRunner(event_log, p, bus) for p in parts.projections]
        ops = ops_api.OpsApi(
            self.name, event_log, lambda: (relay, runners, parts.workers), lambda: self.serving
        )
        self.verifier = auth.KeyVerifier(pool, url=s.database_url)
        self._stoppables = [
            self.verifier,
            relay,
            *runners,
            *parts.workers,
            LagSampler(event_log, relay, runners, parts.workers),
        ]
        if parts.http is not None:
            self.http = parts.http(s.grpc_host, self._port)
            self._stoppables.append(self.http)
        else:
            self.server = GrpcServer([*parts.registrations, ops_api.registration(ops)], self.verifier)
            self.server.bind(f"{s.grpc_host}:{self._port}", tls=_tls(s))
            await self.server.start()
        self._tasks = [asyncio.create_task(w.run(), name=type(w).__name__) for w in self._stoppables]
        for task in self._tasks:
            task.add_done_callback(_report_exit)
        if self.http is not None:
            await self.http.listening()
        self._tasks.append(asyncio.create_task(self._health_loop(), name="health"))
        log.info("%s listening on %s:%d", self.name, s.grpc_host, self.port)

    async def _health_loop(self) -> None:
        assert self.runtime is not None
        while True:
            ok = self.runtime.bus is not None and self.runtime.bus.nc.is_connected
            try:
                async with self.runtime.pool.connection(timeout=2) as conn:
                    await conn.execute("SELECT 1")
            except (psycopg.Error, TimeoutError, OSError):
                ok = False
            # A worker that died or a projection stuck on a failing event is not serving either.
            workers = [t for t in self._tasks if t.get_name() != "health"]
            if any(t.done() for t in workers) or any(getattr(w, "failing", False) for w in self._stoppables):
                ok = False
            self.serving = ok
            if self.server is not None:
                await self.server.set_serving(ok)
            if self.http is not None:
                self.http.set_serving(ok)
            await asyncio.sleep(2.0 if ok else 0.5)

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_s
        self.serving = False
        if self.server is not None:
            await self.server.stop(grace)
        for worker in self._stoppables:
            worker.stop()
        health = [t for t in self._tasks if t.get_name() == "health"]
        for task in health:
            task.cancel()
        rest = [t for t in self._tasks if t not in health]
        _, pending = await asyncio.wait(rest, timeout=grace) if rest else (set(), set())
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*health, *pending, return_exceptions=True)
        if self._parts is not None:
            for hook in self._parts.on_stop:
                await hook()
        if self.runtime is not None:
            if self.runtime.bus is not None:
                with contextlib.suppress(Exception):
                    await self.runtime.bus.close()
            await self.runtime.pool.close()


def _report_exit(task: asyncio.Task[None]) -> None:
    """A worker that ends before the service stops is logged when it ends, with its error:
    health turns NOT_SERVING for it, and the log must say why."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("worker %s died", task.get_name(), exc_info=error)


def _tls(s: Settings) -> tuple[bytes, bytes, bytes | None] | None:
    if not s.tls_cert_file:
        return None
    if not s.tls_key_file:
        raise ConfigError("CERTWATCH_TLS_KEY_FILE is required with CERTWATCH_TLS_CERT_FILE")
    client_ca = Path(s.tls_client_ca_file).read_bytes() if s.tls_client_ca_file else None
    return Path(s.tls_cert_file).read_bytes(), Path(s.tls_key_file).read_bytes(), client_ca


def main(name: str, build: Build, settings: Settings, migrations: Sequence[str] = ()) -> None:
    """Entry point of `certwatch serve NAME`: run until SIGTERM or SIGINT."""
    logs.setup(name, level=settings.log_level, fmt=settings.log_format)
    telemetry.setup(name, otlp_endpoint=settings.otlp_endpoint)

    async def _run() -> None:
        service = Service(name, settings, build, migrations=migrations)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.start()
        heap.settle()  # started: what it holds now lives as long as the process
        await stop.wait()
        log.info("%s stopping", name)
        await service.stop()
        log.info("%s stopped", name)

    try:
        import uvloop
    except ImportError:
        log.warning("uvloop is not installed: running on the standard asyncio event loop (slower)")
        asyncio.run(_run())
    else:
        uvloop.run(_run())
