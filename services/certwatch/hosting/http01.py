"""The http-01 responder: `GET /.well-known/acme-challenge/<token>` on CERTWATCH_ACME_HTTP01_ADDR.

Port 80 of every hosted name is routed here, to every replica behind one route, so the CA's
GET may reach a replica that did not place the order. An answer put here is therefore also
written to `hosting_http01_answers` before the CA is told to validate, and a token not in
this process's memory is looked up there. Key authorizations are not secret (the CA fetches
them in clear): the rows expire after ANSWER_TTL and are deleted on cleanup.

`put` and `drop` are called from ACME worker threads: they write through the event loop that
owns the pool (the one `start` ran on), waiting WRITE_TIMEOUT_S at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)
_PREFIX = "/.well-known/acme-challenge/"
ANSWER_TTL = timedelta(hours=1)  # a validation follows its answer within seconds
WRITE_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 2.0  # of the lookup, well inside what a CA waits for its GET


class ShareError(Exception):
    """The answer could not be written to (or removed from) the shared table."""


class Http01Responder:
    def __init__(self, pool: AsyncConnectionPool[Any], host: str, port: int) -> None:
        self._pool = pool
        self._host, self._port = host, port
        self._answers: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.served = 0
        self.served_shared = 0  # of those, answers this process did not put (another replica's)

    def put(self, token: str, key_authorization: str) -> None:
        """From a worker thread: answerable by every replica when this returns."""
        self._through_loop(self._store(token, key_authorization))
        self._answers[token] = key_authorization

    def drop(self, token: str) -> None:
        """From a worker thread; raises ShareError when the row stays (until it expires)."""
        self._answers.pop(token, None)
        self._through_loop(self._delete(token))

    def _through_loop(self, write: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            write.close()
            raise ShareError("the http-01 responder is not started")
        future = asyncio.run_coroutine_threadsafe(write, self._loop)
        try:
            future.result(timeout=WRITE_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise ShareError(f"the database did not answer within {WRITE_TIMEOUT_S:.0f}s") from None
        except psycopg.Error as exc:  # PoolTimeout included
            raise ShareError(str(exc)) from exc

    async def _store(self, token: str, key_authorization: str) -> None:
        async with self._pool.connection(timeout=WRITE_TIMEOUT_S / 2) as conn:
            await conn.execute(
                "WITH purged AS (DELETE FROM hosting_http01_answers WHERE expires_at < now())"
                " INSERT INTO hosting_http01_answers (token, key_authorization, expires_at)"
                " VALUES (%s, %s, now() + %s) ON CONFLICT (token) DO UPDATE"
                " SET key_authorization = EXCLUDED.key_authorization, expires_at = EXCLUDED.expires_at",
                (token, key_authorization, ANSWER_TTL),
            )

    async def _delete(self, token: str) -> None:
        async with self._pool.connection(timeout=WRITE_TIMEOUT_S / 2) as conn:
            await conn.execute("DELETE FROM hosting_http01_answers WHERE token = %s", (token,))

    async def _shared(self, token: str) -> str | None:
        async with asyncio.timeout(READ_TIMEOUT_S), self._pool.connection(timeout=READ_TIMEOUT_S) as conn:
            cur = await conn.execute(
                "SELECT key_authorization FROM hosting_http01_answers WHERE token = %s AND expires_at > now()",
                (token,),
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def _answer(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        answer = self._answers.get(token)
        if answer is None:
            try:
                answer = await self._shared(token)
            except (TimeoutError, psycopg.Error) as exc:
                log.warning("http-01: the shared answers could not be read for a challenge: %s", exc)
                return web.Response(status=503, text="challenge answers are unavailable")
            if answer is None:
                return web.Response(status=404, text="no such challenge")
            self.served_shared += 1
        self.served += 1
        return web.Response(text=answer, content_type="application/octet-stream")

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
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
