"""uvicorn inside the service process, as the platform's HTTP edge (see `Parts.http`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from certwatch.console import users
from certwatch.console.web import Console

_START_TIMEOUT_S = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The service's bootstrap owns SIGTERM/SIGINT and stops us through `stop()`."""
        yield


class HttpEdge:
    def __init__(self, app: Starlette, state: Console, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, proxy_headers=False, server_header=False)  # fmt: skip
        self._server = _Server(config)
        self._state = state
        self._requested = port

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self._requested

    async def run(self) -> None:
        await users.prepare()
        await self._server.serve()
        if not self._server.started:
            raise OSError(f"the console could not listen on port {self._requested}")

    async def listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or self._server.should_exit:
                raise OSError(f"the console did not start listening on port {self._requested}")
            await asyncio.sleep(0.02)

    def set_serving(self, serving: bool) -> None:
        self._state.serving = serving

    def stop(self) -> None:
        self._state.pulse.closing = True
        self._state.pulse.beat()
        self._server.should_exit = True
