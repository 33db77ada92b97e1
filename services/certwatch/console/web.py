"""The console's ASGI app: routes, templates, the signed-in session, errors as pages.

Every page but sign-in, the static files and `/healthz` needs a session; its API key makes
every gRPC call the page makes, so a page shows only the signed-in account's data.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from certwatch.console import backend as be
from certwatch.console.csrf import CrossOriginProtection
from certwatch.console.live import Pulse
from certwatch.console.sessions import Session, Sessions, SignInLimit
from certwatch.platform import templates
from certwatch.rules.targets import unicode_hostname

COOKIE = "certwatch_session"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
    " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class Console:
    """What every handler reaches through `request.app.state.console`."""

    pool: AsyncConnectionPool[Any]
    backend: be.Backend
    sessions: Sessions
    limit: SignInLimit
    pulse: Pulse
    serving: bool = False


def _when(stamp: Timestamp | None) -> str:
    if stamp is None or not stamp.seconds:
        return ""
    return str(stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _ago(stamp: Timestamp | None) -> str:
    if stamp is None or not stamp.seconds:
        return "never"
    seconds = max(0, int(datetime.now(UTC).timestamp() - stamp.seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


_ENV = templates.environment("certwatch.console")
_ENV.globals.update(when=_when, ago=_ago, shown=unicode_hostname)


def fragment(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def page(request: Request, template: str, /, *, http_status: int = 200, **context: Any) -> HTMLResponse:
    session = request.scope.get("cw_session")
    body = fragment(template, request=request, session=session, **context)
    return HTMLResponse(body, status_code=http_status, headers=SECURITY_HEADERS)


async def read_form(request: Request, *, max_files: int = 0, max_fields: int = 100) -> FormData:
    """The form, its uploads read into memory and their temporary files closed at once."""
    async with request.form(max_files=max_files, max_fields=max_fields) as form:
        items: list[tuple[str, str | UploadFile]] = []
        for key, value in form.multi_items():
            if isinstance(value, str):
                items.append((key, value))
            else:
                data = await value.read(MAX_UPLOAD_BYTES + 1)
                if len(data) > MAX_UPLOAD_BYTES:
                    raise HTTPException(400, f"{key}: a file of at most {MAX_UPLOAD_BYTES // 1024} KiB")
                items.append((key, UploadFile(io.BytesIO(data), size=len(data), filename=value.filename)))
    return FormData(items)


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


async def session(request: Request) -> Session:
    """The signed-in session, or a redirect to sign-in (htmx follows `HX-Redirect`)."""
    found = await console(request).sessions.get(request.cookies.get(COOKIE))
    if found is None:
        target = "/signin?next=" + quote(request.url.path)
        headers = {"HX-Redirect": target, "Location": target}
        raise HTTPException(303, headers=headers)
    request.scope["cw_session"] = found
    return found


async def rpc(request: Request, call: Awaitable[Any]) -> Any:
    """Await one gRPC call; its refusal becomes the page's error (404 for another account's id)."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        refused = be.refusal(exc)
        if refused.http_status == 401:  # the session's key was revoked under it
            raise HTTPException(303, headers={"Location": "/signin", "HX-Redirect": "/signin"}) from None
        raise HTTPException(refused.http_status, detail=_message(refused)) from None


def _message(refused: be.Refusal) -> str:
    if refused.fields:
        return "; ".join(f"{f}: {d}" for f, d in refused.fields)
    return refused.message


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if 300 <= exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    titles = {404: "Not found", 403: "Refused", 400: "Not accepted", 409: "Not possible now",
              429: "Too many attempts", 503: "Unavailable"}  # fmt: skip
    title = titles.get(exc.status_code, "Error")
    if request.headers.get("hx-request"):
        return HTMLResponse(fragment("_error.html", title=title, detail=exc.detail), exc.status_code)
    return page(request, "error.html", http_status=exc.status_code, title=title, detail=exc.detail)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return await _http_error(request, HTTPException(503, f"{exc}: this console does not reach that service"))


async def _healthz(request: Request) -> Response:
    ok = console(request).serving
    return PlainTextResponse("SERVING" if ok else "NOT_SERVING", status_code=200 if ok else 503)


async def _home(request: Request) -> Response:
    return RedirectResponse("/domains", status_code=303)


Handler = Callable[[Request], Awaitable[Response]]


def build_app(state: Console, routes: list[BaseRoute]) -> Starlette:
    static = StaticFiles(directory=str(files("certwatch.console") / "static"))
    app = Starlette(
        routes=[
            Route("/", _home),
            Route("/healthz", _healthz),
            Mount("/static", static, name="static"),
            *routes,
        ],
        middleware=[Middleware(CrossOriginProtection)],
        exception_handlers={HTTPException: _http_error, be.Unavailable: _unavailable},
    )
    app.state.console = state
    return app
