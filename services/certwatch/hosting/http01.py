"""The http-01 responder: `GET /.well-known/acme-challenge/<token>` on CERTWATCH_ACME_HTTP01_ADDR.

Port 80 of every hosted name is routed here. Key authorizations are not secret (the CA
fetches them in clear) and are derived again from the account key when an order resumes,
so they live in memory only. Written from ACME worker threads, read by the event loop:
single dict operations, atomic under the GIL.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)
_PREFIX = "/.well-known/acme-challenge/"


class Http01Responder:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._answers: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.served = 0

    def put(self, token: str, key_authorization: str) -> None:
        self._answers[token] = key_authorization

    def drop(self, token: str) -> None:
        self._answers.pop(token, None)

    async def _answer(self, request: web.Request) -> web.Response:
        answer = self._answers.get(request.match_info["token"])
        if answer is None:
            return web.Response(status=404, text="no such challenge")
        self.served += 1
        return web.Response(text=answer, content_type="application/octet-stream")

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(_PREFIX + "{token}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        log.info("http-01 responder on %s:%d", self._host, self._port)

    async def run(self) -> None:
        if self._runner is None:
            await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.close()

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
