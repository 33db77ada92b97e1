"""Real servers on loopback for probe tests, each a bounded context manager.

TLS and plain-HTTP servers run on an asyncio loop in a background thread. The "silent"
server needs no thread at all: a listening socket that never accepts still completes TCP
handshakes (the kernel does it), and then never says a word. A "closed" port is a bound
socket that does not listen, so connections are refused and nobody else can take the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator

from certwatch.platform.localstack import free_port

_IO_TIMEOUT = 5.0
_MAX_READ = 64 * 1024


def server_context(
    certfile: str,
    keyfile: str,
    *,
    min_version: ssl.TLSVersion | None = None,
    max_version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    legacy: bool = False,
) -> ssl.SSLContext:
    """A server context; ``legacy`` lowers OpenSSL's security level to 0 so that SHA-1,
    RSA-1024 and TLS 1.0 servers can exist for the probe to observe."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        context.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    elif ciphers:
        context.set_ciphers(ciphers)
    with warnings.catch_warnings():  # TLS 1.0/1.1 settings are deprecated, on purpose here
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            context.minimum_version = min_version
        if max_version is not None:
            context.maximum_version = max_version
    context.load_cert_chain(certfile, keyfile)
    return context


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _drain_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_IO_TIMEOUT):
            while len(await reader.read(_MAX_READ)) > 0:
                pass


async def _answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_IO_TIMEOUT):
            await reader.read(_MAX_READ)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()


class _Server:
    """One asyncio server on its own loop thread; start() and stop() are bounded."""

    def __init__(self, handler: Handler, host: str, port: int, tls: ssl.SSLContext | None):
        self._handler = handler
        self._host, self._port, self._tls = host, port, tls
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda loop, context: None)  # handshakes fail on purpose
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        try:
            await self._handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(_IO_TIMEOUT):
                    await writer.wait_closed()
            self._writers.discard(writer)
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _start(self) -> int:
        timeout = _IO_TIMEOUT if self._tls is not None else None
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, ssl=self._tls, ssl_handshake_timeout=timeout
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=_IO_TIMEOUT)
        await self._server.wait_closed()

    def start(self) -> int:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(_IO_TIMEOUT)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(_IO_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_IO_TIMEOUT)
            self._loop.close()


@contextlib.contextmanager
def serve(handler: Handler, host: str, port: int, tls: ssl.SSLContext | None) -> Iterator[int]:
    """Run ``handler`` for each connection on host:port; yields the bound port."""
    server = _Server(handler, host, port, tls)
    try:
        bound = server.start()
    except BaseException:
        server.stop()
        raise
    try:
        yield bound
    finally:
        server.stop()


def tls_server(
    context: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0
) -> contextlib.AbstractContextManager[int]:
    """Serve TLS with ``context``; yields the port. Connections are read until EOF."""
    return serve(_drain_until_eof, host, port, context)


def http_server(host: str = "127.0.0.1", port: int = 0) -> contextlib.AbstractContextManager[int]:
    """Plain HTTP on the port: answers anything with 400, as nginx does to a ClientHello."""
    return serve(_answer_http, host, port, None)


@contextlib.contextmanager
def silent_server(host: str = "127.0.0.1") -> Iterator[int]:
    """Accepts TCP connections (via the backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections and stays reserved while the context is open."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


def free_port_on(hosts: tuple[str, ...], attempts: int = 20) -> int:
    """A port number that is currently free on every host in ``hosts``."""
    for _ in range(attempts):
        socks: list[socket.socket] = []
        try:
            for host in hosts:
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind((host, socks[0].getsockname()[1] if len(socks) > 1 else free_port(host)))
            return int(socks[0].getsockname()[1])
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no common free port on {hosts}")
