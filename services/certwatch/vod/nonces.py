"""Signature nonces remembered in PostgreSQL (`vod_signature_nonces`), so every replica
refuses a replay.

The nonces of concurrent requests go in one statement: one round trip and one commit for
all the requests that arrived while the previous statement ran, so the cost per request
falls as the load rises. The statement commits asynchronously (`synchronous_commit=off`
for it alone): a signed request does not wait for a WAL flush, and what a PostgreSQL crash
(not a certwatch one) can lose is the nonces of its last moments (at most 3 x
wal_writer_delay, 0.6 s by default), whose requests could then be replayed once within
their 15-minute window.

This is the hot path of every signed request (bench/vod_api.py), so the statement is sent
through libpq directly (`psycopg.pq`, on a connection the writer holds): psycopg's cursor
machinery cost twice the CPU of the round trip itself. It answers one row, the positions
of the refused nonces, rather than a row a nonce.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import psycopg
from psycopg import pq
from psycopg.pq.abc import PGresult
from psycopg_pool import AsyncConnectionPool

from certwatch.platform.errors import TransientStoreError
from certwatch.vod import signing

_PURGE_EVERY_S = 60.0
_NAME = b"certwatch_vod_nonces"
_DUPLICATE_PREPARED = b"42P05"  # the connection, back from the pool, has it already
_REMEMBER = (
    b"WITH p AS (SELECT t.p->>0 AS k, t.p->>1 AS n, t.i FROM json_array_elements($1::json)"
    b" WITH ORDINALITY AS t(p, i)),"
    b" new AS (INSERT INTO vod_signature_nonces (access_key_id, nonce) SELECT k, n FROM p"
    b" ON CONFLICT DO NOTHING RETURNING access_key_id, nonce)"
    b" SELECT set_config('synchronous_commit', 'off', true),"
    b" (SELECT string_agg((p.i - 1)::text, ',') FROM p"
    b"  WHERE NOT EXISTS (SELECT FROM new WHERE new.access_key_id = p.k AND new.nonce = p.n))"
)

Pending = tuple[str, str, "asyncio.Future[bool]"]


class Nonces:
    """`submit` a nonce, await whether it is new.

    Up to WRITERS statements are in flight at once, each on a connection its writer holds
    for HOLD_S after a batch (under load no batch pays for taking a connection from the pool
    and giving it back). Nonces that arrive together while no statement is in flight go
    half in one statement and half in another right behind it: their answers come back
    apart, so the requests of one half are being answered while the other half's statement
    runs, instead of every request waiting for one round trip together (bench/vod_api.py:
    the event loop idled a fifth of the time that way)."""

    HOLD_S = 0.5
    WRITERS = 2

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._pending: list[Pending] = []
        self._idle: list[asyncio.Future[None]] = []  # one per writer waiting for nonces
        self._writers: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # statements sent, not yet answered
        self._purged_at = 0.0

    def submit(self, access_key_id: str, nonce: str) -> asyncio.Future[bool]:
        """Resolves True when the nonce is new for the key (now remembered), False when seen
        before."""
        seen: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((access_key_id, nonce, seen))
        if len(self._pending) == 1:
            self._call_writer()
        return seen

    def _call_writer(self, *, start: bool = True) -> None:
        """Wake a writer waiting for nonces, else start one if fewer than WRITERS run (a
        busy one takes the nonces when its statement is answered)."""
        while self._idle:
            idle = self._idle.pop()
            if not idle.done():
                idle.set_result(None)
                return
        if start and len(self._writers) < self.WRITERS:
            writer = asyncio.create_task(self._write())
            self._writers.add(writer)

    def _take(self) -> list[Pending]:
        """The next batch: every nonce waiting, or the first half of them when no statement
        is in flight (another writer is called for the rest). A nonce given twice stays in
        one batch, so the first of its requests is the one admitted."""
        n = len(self._pending)
        if n < 2 or self._in_flight or self.WRITERS < 2:
            batch, self._pending = self._pending, []
            return batch
        batch, rest = self._pending[: (n + 1) // 2], list[Pending]()
        taken = {(key, nonce) for key, nonce, _ in batch}
        for pending in self._pending[len(batch) :]:
            (batch if (pending[0], pending[1]) in taken else rest).append(pending)
        self._pending = rest
        if rest:
            self._call_writer()
        return batch

    async def _more(self) -> bool:
        """Whether nonces are waiting, waiting up to HOLD_S for one when none is."""
        if not self._pending:
            loop = asyncio.get_running_loop()
            idle = loop.create_future()
            self._idle.append(idle)
            timer = loop.call_later(self.HOLD_S, _resolve, idle)
            try:
                await idle
            finally:
                timer.cancel()
                if idle in self._idle:
                    self._idle.remove(idle)
        return bool(self._pending)

    async def _write(self) -> None:
        batch: list[Pending] = []
        try:
            while self._pending:  # one arrived while the connection was given back: take one again
                try:
                    async with self._pool.connection() as conn:
                        statement = _Statement(conn)
                        while await self._more():
                            batch = self._take()
                            self._in_flight += 1
                            try:
                                await self._remember(statement, batch)
                            finally:
                                self._in_flight -= 1
                            batch = []
                            if time.monotonic() - self._purged_at > _PURGE_EVERY_S:
                                self._purged_at = time.monotonic()
                                await conn.execute(
                                    "DELETE FROM vod_signature_nonces WHERE seen_at < now() - %s",
                                    (2 * signing.MAX_SKEW,),
                                )
                except Exception as exc:
                    # This batch fails (all waiting ones, without a connection); later ones get a new connection.
                    failed, batch = batch or self._pending, []
                    if failed is self._pending:
                        self._pending = []
                    if isinstance(exc, psycopg.OperationalError):
                        exc = TransientStoreError(str(exc))
                    for *_, seen in failed:
                        if not seen.done():
                            seen.set_exception(exc)
        finally:  # cancelled (shutdown): no waiter is left hanging
            self._writers.discard(asyncio.current_task())
            left = batch + (self._pending if not self._writers else [])
            for *_, seen in left:
                if not seen.done():
                    seen.cancel()
            if not self._writers:
                self._pending = []
            elif self._pending:  # the other writer takes them (none is started while shutting down)
                self._call_writer(start=False)

    @staticmethod
    async def _remember(statement: _Statement, batch: list[Pending]) -> None:
        index: dict[tuple[str, str], int] = {}
        for key, nonce, _ in batch:
            index.setdefault((key, nonce), len(index))
        refused_text = await statement.run(orjson.dumps(list(index)))
        refused = {int(i) for i in refused_text.split(b",")} if refused_text else set()
        for key, nonce, seen in batch:
            i = index.pop((key, nonce), None)  # a nonce twice in one batch: only the first is new
            if not seen.done():
                seen.set_result(i is not None and i not in refused)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Statement:
    """The nonces statement, prepared on `conn` and run through libpq. Between runs the
    connection is idle, so psycopg can use it (the purge) and the pool take it back; a run
    cancelled half-way leaves it busy, and the pool then closes it."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._pg = conn.pgconn
        self._prepared = False

    async def run(self, pairs_json: bytes) -> bytes | None:
        """The refused positions, comma-separated (None when every nonce is new)."""
        pg = self._pg
        if not self._prepared:
            pg.send_prepare(_NAME, _REMEMBER)
            result = await self._result()
            sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
            if result.status != pq.ExecStatus.COMMAND_OK and sqlstate != _DUPLICATE_PREPARED:
                raise _error(result)
            self._prepared = True
        pg.send_query_prepared(_NAME, [pairs_json])
        result = await self._result()
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise _error(result)
        return result.get_value(0, 1)

    async def _result(self) -> PGresult:
        """The last result of the query sent (libpq ends each with None)."""
        pg = self._pg
        loop = asyncio.get_running_loop()
        while pg.flush():  # the rest of the query waits for the socket (a large batch)
            await _ready(loop.add_writer, loop.remove_writer, pg.socket)
        last: PGresult | None = None
        while True:
            pg.consume_input()
            while not pg.is_busy():
                result = pg.get_result()
                if result is None:
                    if last is None:
                        raise psycopg.OperationalError("the server sent no result")
                    return last
                last = result
            await _ready(loop.add_reader, loop.remove_reader, pg.socket)


async def _ready(add: Any, remove: Any, fd: int) -> None:
    ready = asyncio.get_running_loop().create_future()
    add(fd, _resolve, ready)
    try:
        await ready
    finally:
        remove(fd)


def _error(result: PGresult) -> psycopg.Error:
    message = (result.error_message or b"the nonces statement failed").decode(errors="replace").strip()
    return psycopg.DatabaseError(message)
