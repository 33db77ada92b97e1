"""What pebble 2.4 lacks, served beside it: ARI (RFC 9773 `renewalInfo`) and `rateLimited` answers.

A small HTTP server whose `/dir` is pebble's directory plus a `renewalInfo` URL of its own
(the suggested window comes from the test, relative to its injected clock); while
`limit_orders` is above zero, the directory's `newOrder` points here too and each order is
refused with a `rateLimited` problem (or another `refusal`), a `Retry-After` (seconds or an
HTTP-date) and a fresh pebble nonce, as Boulder answers. Every other URL is pebble's own, so orders and accounts are real.
"""

from __future__ import annotations

import email.utils
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from certwatch.platform.localstack import free_port
from tests.support.pebble import Pebble


def _stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class AcmeFront:
    pebble: Pebble
    window: Callable[[], tuple[datetime, datetime]] | None = None  # None: no ARI in the directory
    limit_orders: int = 0
    retry_after_s: int = 120
    retry_after_date: bool = False  # Retry-After as an HTTP-date (RFC 9110 allows both forms)
    refusal: tuple[str, int] = ("rateLimited", 429)  # the problem type and status refused orders get
    port: int = 0
    refused_orders: int = 0
    ari_queries: list[str] = field(default_factory=list)

    @property
    def directory(self) -> str:
        return f"http://127.0.0.1:{self.port}/dir"

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.pebble.ca_file)

    async def _dir(self, request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as s, s.get(self.pebble.directory, ssl=self._tls()) as resp:
            directory = await resp.json()
        base = f"http://127.0.0.1:{self.port}"
        if self.window is not None:
            directory["renewalInfo"] = f"{base}/renewal-info"
        if self.limit_orders > 0:
            directory["newOrder"] = f"{base}/new-order"
        return web.json_response(directory)

    async def _renewal_info(self, request: web.Request) -> web.Response:
        if self.window is None:
            return web.Response(status=404)
        self.ari_queries.append(request.match_info["cert_id"])
        start, end = self.window()
        body = {"suggestedWindow": {"start": _stamp(start), "end": _stamp(end)}}
        return web.json_response(body, headers={"Retry-After": "21600"})

    async def _new_order(self, request: web.Request) -> web.Response:
        await request.read()
        async with aiohttp.ClientSession() as s:
            async with s.get(self.pebble.directory, ssl=self._tls()) as resp:
                nonce_url = (await resp.json())["newNonce"]
            async with s.head(nonce_url, ssl=self._tls()) as resp:
                nonce = resp.headers["Replay-Nonce"]
        self.limit_orders -= 1
        self.refused_orders += 1
        code, status = self.refusal
        problem = {"type": f"urn:ietf:params:acme:error:{code}", "detail": "too many new orders recently",
                   "status": status}  # fmt: skip
        retry_after = str(self.retry_after_s)
        if self.retry_after_date:
            retry_after = email.utils.format_datetime(
                datetime.now(UTC) + timedelta(seconds=self.retry_after_s), usegmt=True
            )
        return web.Response(
            status=status, text=json.dumps(problem), content_type="application/problem+json",
            headers={"Retry-After": retry_after, "Replay-Nonce": nonce},
        )  # fmt: skip


@asynccontextmanager
async def acme_front(pebble: Pebble, **kwargs: object) -> AsyncIterator[AcmeFront]:
    front = AcmeFront(pebble, port=free_port(), **kwargs)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_get("/dir", front._dir)
    app.router.add_get("/renewal-info/{cert_id}", front._renewal_info)
    app.router.add_post("/new-order", front._new_order)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", front.port).start()
    try:
        yield front
    finally:
        await runner.cleanup()
