"""The VOD API over HTTP, in Alibaba Cloud's RPC style, so its own SDKs work unchanged.

`Describe*` actions (queries) read while the request's nonce is remembered, both at once;
commands run only after it. `Action` and `Version` come from the parameters (GET query, POST query or form body) or,
for ACS3-signed requests, the signed `x-acs-action` / `x-acs-version` headers the current
SDK sends instead. JSON unless `Format=XML`. Every failure is an error body in the cloud's
format (`RequestId`, `HostId`, `Code`, `Message`, `Recommend`) with its HTTP status; an
unexpected one is logged here and answered `InternalError`, never with a traceback.

HTTP/1.1 on asyncio streams rather than an ASGI stack: one route, bodies with a
Content-Length only (the SDKs send nothing else), no new runtime dependency, and nothing
between the socket and the handler to cost time in the benchmark. Keep-alive is honoured;
header and body sizes and the idle time are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

import orjson

from certwatch.platform.config import ConfigError
from certwatch.platform.errors import TransientStoreError
from certwatch.platform.service import Runtime
from certwatch.platform.shredding import Vault
from certwatch.vod import signing
from certwatch.vod.authn import Authenticator, Caller, RateLimit
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.domains import VodDomains
from certwatch.vod.errors import ApiError, invalid, missing
from certwatch.vod.metrics import action_of, record_request
from certwatch.vod.sdk_actions import SDK_ACTIONS

log = logging.getLogger(__name__)

VERSION = "2017-03-21"
MAX_HEADER_BYTES = 64 * 1024  # SetVodDomainCertificate sends a chain and its key in the query
MAX_HEADERS = 64
MAX_BODY_BYTES = 64 * 1024
IDLE_TIMEOUT_S = 30.0

Handler = Callable[[Caller, Mapping[str, str]], Awaitable[dict[str, Any]]]


class _BadRequest(Exception):
    """The bytes are not an HTTP/1.1 request we accept: answer, then close."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def parse_params(text: str, where: str) -> dict[str, str]:
    """Decoded parameters; a name given twice is refused (which one would be signed?)."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid(where, "not URL-encoded UTF-8") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise invalid(name, "given more than once")
        params[name] = value
    return params


def render(payload: Mapping[str, Any], root: str, xml: bool) -> tuple[str, bytes]:
    if not xml:
        return "application/json;charset=utf-8", orjson.dumps(payload)
    return "text/xml;charset=utf-8", (
        f"<?xml version='1.0' encoding='UTF-8'?><{root}>{_xml(payload)}</{root}>".encode()
    )


def _xml(value: Mapping[str, Any]) -> str:
    out = []
    for name, item in value.items():
        for one in item if isinstance(item, list) else [item]:
            inner = _xml(one) if isinstance(one, Mapping) else escape(str(one))
            out.append(f"<{name}>{inner}</{name}>")
    return "".join(out)


class RequestIds:
    """RequestIds in the cloud's shape (an upper-case UUID), unique: a random prefix per
    process and a counter (uuid4 reads the OS's random source for every request)."""

    def __init__(self) -> None:
        p = uuid.uuid4().hex[:20].upper()
        self._prefix = f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-"
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count) % 16**12:012X}"


class VodHttpApi:
    """The actions, authentication and rendering; `handle` never raises."""

    def __init__(self, authenticator: Authenticator, actions: Mapping[str, Handler], *, region: str) -> None:
        self._authn, self._actions, self._region = authenticator, actions, region
        self._ids = RequestIds()

    async def handle(self, request: signing.Request) -> Response:
        request_id = self._ids.next()
        params = {**request.query, **request.form}
        xml = params.get("Format", "JSON").upper() == "XML"
        named = action_of(params, request.header("x-acs-action"), self._actions)
        try:
            action, result = await self._dispatch(request, params)
            body = {"RequestId": request_id, **result}
            content_type, data = render(body, f"{action}Response", xml)
            record_request(named, "Success", 200)
            return Response(200, content_type, data)
        except ApiError as exc:
            return self._error(request, request_id, exc, xml, named)
        except TransientStoreError:
            return self._error(request, request_id, ApiError("ServiceUnavailable", "The service is temporarily unavailable."), xml, named)  # fmt: skip
        except Exception:
            log.exception("vod api request %s failed", request_id)
            return self._error(request, request_id, ApiError("InternalError", "The request processing has failed due to some unknown error."), xml, named)  # fmt: skip

    async def _dispatch(
        self, request: signing.Request, params: Mapping[str, str]
    ) -> tuple[str, dict[str, Any]]:
        if request.method not in ("GET", "POST"):
            raise ApiError("UnsupportedHTTPMethod", f"The HTTP method {request.method} is not supported.")  # fmt: skip
        caller = await self._authn.authenticate(request)
        signed_headers = caller.claim.scheme == signing.ACS3
        version = params.get("Version") or (request.header("x-acs-version") if signed_headers else None)
        action = params.get("Action") or (request.header("x-acs-action") if signed_headers else None)
        if not version:
            raise missing("Version")
        if version != VERSION:
            raise ApiError("NoSuchVersion", f"Specified api version {version} is not valid: use {VERSION}.")  # fmt: skip
        if not action:
            raise missing("Action")
        region = params.get("RegionId")
        if region and region != self._region:
            raise ApiError("RegionId.ApiNotSupported", f"The api is not supported in this region: {region} (this endpoint serves {self._region}).")  # fmt: skip
        handler = self._actions.get(action)
        if handler is None and action in SDK_ACTIONS:
            raise ApiError("UnsupportedOperation", f"The specified action {action} is not supported by this endpoint.")  # fmt: skip
        if handler is None:
            raise ApiError("InvalidAction.NotFound", f"Specified api {action} is not found.")
        if not action.startswith("Describe"):  # a command runs only once its nonce is remembered
            await self._authn.admit(caller)
            return action, await handler(caller, params)
        # A query reads while its nonce is remembered; a replay's answer is never sent.
        return action, await self._authn.admit_while(caller, handler(caller, params))

    @staticmethod
    def _error(request: signing.Request, request_id: str, exc: ApiError, xml: bool, action: str) -> Response:
        record_request(action, exc.code, exc.status)
        body = {"RequestId": request_id, "HostId": request.header("host") or "", "Code": exc.code,
                "Message": exc.message, "Recommend": exc.recommend}  # fmt: skip
        content_type, data = render(body, "Error", xml)
        headers = () if exc.retry_after_ms is None else (("x-acs-retry-after", str(exc.retry_after_ms)),)
        return Response(exc.status, content_type, data, headers)


async def _read_request(reader: asyncio.StreamReader) -> tuple[signing.Request, bool] | None:
    """The next request and whether to keep the connection; None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest("the request ended inside its header") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest(f"the request header is longer than {MAX_HEADER_BYTES} bytes") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest("the request line is not 'METHOD target HTTP/1.1'")
    method, target, protocol = parts
    if len(lines) - 1 > MAX_HEADERS:
        raise _BadRequest(f"more than {MAX_HEADERS} header fields")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(f"the header line {line[:40]!r} is not 'Name: value'")
        headers.setdefault(name.lower(), []).append(value.strip())
    if "transfer-encoding" in headers:
        raise _BadRequest("Transfer-Encoding is not supported: send a Content-Length")
    length_text = ",".join(headers.get("content-length", ["0"]))
    if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
        raise _BadRequest(f"Content-Length must be a number of bytes up to {MAX_BODY_BYTES}")
    try:
        body = await reader.readexactly(int(length_text))
    except asyncio.IncompleteReadError:
        raise _BadRequest("the body is shorter than its Content-Length") from None
    path, _, query = target.partition("?")
    content_type = ",".join(headers.get("content-type", [])).lower()
    try:
        form_text = body.decode() if content_type.startswith("application/x-www-form-urlencoded") else ""
    except UnicodeDecodeError:
        raise _BadRequest("the form body is not UTF-8") from None
    connection = ",".join(headers.get("connection", [])).lower()
    keep = "close" not in connection and (protocol == "HTTP/1.1" or "keep-alive" in connection)
    request = signing.Request(
        method=method, path=unquote(path), query=parse_params(query, "query"),
        form=parse_params(form_text, "body"), headers=headers, body=body,
    )  # fmt: skip
    return request, keep


def _encode(response: Response, keep: bool) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(response.status, "Error")  # fmt: skip
    lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}",
             f"Content-Length: {len(response.body)}", f"Connection: {'keep-alive' if keep else 'close'}",
             *(f"{k}: {v}" for k, v in response.headers)]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + response.body


class Answers(Protocol):
    async def handle(self, request: signing.Request) -> Response: ...


class HttpServer:
    """Serves a `VodHttpApi` (or any `Answers`: the benchmark's bare endpoint) on host:port;
    a Worker (run/stop) for the service's bootstrap."""

    def __init__(self, api: Answers, host: str, port: int) -> None:
        self._api, self._host, self._port = api, host, port
        self._server: asyncio.Server | None = None
        self._stopped = asyncio.Event()
        self._idle: set[asyncio.StreamWriter] = set()  # waiting for their next request

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one the OS chose for 0)."""
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self._host, self._port, limit=MAX_HEADER_BYTES
        )

    async def run(self) -> None:
        if self._server is None:
            await self.start()
        await self._stopped.wait()
        await self.close()

    def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        """Stop listening and end idle keep-alive connections (a request being answered
        finishes: its connection closes after the response)."""
        self.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._idle):
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            keep = True
            while keep and not self._stopped.is_set():
                self._idle.add(writer)
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT_S):
                        parsed = await _read_request(reader)
                except (_BadRequest, ApiError) as exc:
                    error = exc if isinstance(exc, ApiError) else invalid("request", str(exc))
                    writer.write(_encode(VodHttpApi._error(_NO_REQUEST, str(uuid.uuid4()).upper(), error, False, "other"), False))  # fmt: skip
                    break
                finally:
                    self._idle.discard(writer)
                if parsed is None:
                    break
                request, keep = parsed
                writer.write(_encode(await self._api.handle(request), keep))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()
                await writer.wait_closed()


_NO_REQUEST = signing.Request("", "", {}, {}, {}, b"")


def actions(info: CertInfo, domains: VodDomains) -> dict[str, Handler]:
    """Every action by its name in the SDK (`x-acs-action` / `Action`)."""
    return {
        "DescribeVodDomainCertificateInfo": lambda caller, params: info.describe(caller.account_id, params),
        "AddVodDomain": lambda caller, params: domains.add(caller.account_id, params),
        "DeleteVodDomain": lambda caller, params: domains.delete(caller.account_id, params),
        "DescribeVodUserDomains": lambda caller, params: domains.list_domains(caller.account_id, params),
        "SetVodDomainCertificate": lambda caller, params: domains.set_certificate(
            caller.account_id, params, default_type="upload"
        ),
        "SetVodDomainSSLCertificate": lambda caller, params: domains.set_certificate(
            caller.account_id, params
        ),
        "DescribeVodCertificateList": lambda caller, params: domains.list_certificates(
            caller.account_id, params
        ),
    }


async def http_worker(
    rt: Runtime, info: CertInfo, domains: VodDomains, vault: Vault, feed: ChangeFeed
) -> HttpServer:
    """The endpoint as a Worker of the vod bootstrap, already bound (so a taken port fails
    the start) on CERTWATCH_GRPC_HOST and CERTWATCH_VOD_HTTP_PORT."""
    s = rt.settings
    authn = Authenticator(rt.pool, vault, RateLimit(s.vod_rate, s.vod_burst), feed=feed)
    api = VodHttpApi(authn, actions(info, domains), region=s.vod_region)
    server = HttpServer(api, s.grpc_host, s.vod_http_port)
    try:
        await server.start()
    except OSError as exc:
        raise ConfigError(f"CERTWATCH_VOD_HTTP_PORT={s.vod_http_port}: cannot listen on {s.grpc_host}: {exc.strerror}") from None  # fmt: skip
    log.info("vod HTTP API listening on %s:%d", s.grpc_host, server.port)
    return server
