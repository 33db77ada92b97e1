"""Sign-in and sign-out, contacts, quota, system health and the report downloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from certwatch.console import backend as be
from certwatch.console import users
from certwatch.console.sessions import TTL_S
from certwatch.console.web import COOKIE, console, page, read_form, rpc, session
from certwatch.v1 import inventory_pb2 as ipb
from certwatch.v1 import ops_pb2
from certwatch.v1 import reports_pb2 as rpb

HEALTH_TIMEOUT_S = 2.0


def _next(value: str) -> str:
    """Only a path on this site: never an open redirect."""
    return value if value.startswith("/") and not value.startswith("//") else "/domains"


async def signin_form(request: Request) -> Response:
    return page(request, "signin.html", next=_next(request.query_params.get("next", "")), error="")


async def signin(request: Request) -> Response:
    c = console(request)
    form = await read_form(request, max_files=0, max_fields=10)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    client = request.client.host if request.client else "?"
    if not c.limit.allowed(username, client):
        response: Response = page(request, "signin.html", http_status=429, next=target,
                        error="Too many failed attempts: wait a minute, then try again.")  # fmt: skip
        response.headers["Retry-After"] = str(c.limit.retry_after())
        return response
    user = await users.authenticate(c.pool, username, password)
    if user is None:
        c.limit.failed(username, client)
        return page(request, "signin.html", http_status=401, next=target, error="Wrong username or password.")
    token = await c.sessions.start(user)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, token, max_age=int(TTL_S), path="/", secure=True, httponly=True, samesite="strict"
    )
    return response


async def signout(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await console(request).sessions.end(token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


CONTACT_FORM_FIELDS = (
    "name", "email", "phone", "dingtalk_webhook", "dingtalk_secret", "wecom_webhook", "lark_webhook",
    "lark_secret", "webhook_url", "webhook_secret", "apprise_url",
)  # fmt: skip


async def contacts(request: Request) -> Response:
    s = await session(request)
    found = await rpc(request, console(request).backend.inventory.ListContacts(ipb.ListContactsRequest(),
                                                                               metadata=s.metadata))  # fmt: skip
    return page(request, "contacts.html", contacts=found.contacts)


async def add_contact(request: Request) -> Response:
    s = await session(request)
    form = await read_form(request, max_files=0, max_fields=16)
    fields = {k: str(form.get(k, "")).strip() for k in CONTACT_FORM_FIELDS}
    await rpc(request, console(request).backend.inventory.CreateContact(ipb.ContactInput(**fields),
                                                                        metadata=s.metadata))  # fmt: skip
    return RedirectResponse("/contacts", status_code=303)


async def remove_contact(request: Request) -> Response:
    s = await session(request)
    remove = ipb.DeleteContactRequest(id=request.path_params["id"], detach=True)
    await rpc(request, console(request).backend.inventory.DeleteContact(remove, metadata=s.metadata))
    return RedirectResponse("/contacts", status_code=303)


async def quota(request: Request) -> Response:
    s = await session(request)
    found = await rpc(request, console(request).backend.inventory.GetQuota(ipb.GetQuotaRequest(),
                                                                           metadata=s.metadata))  # fmt: skip
    return page(request, "quota.html", q=found)


async def health(request: Request) -> Response:
    """What `certwatch status` shows: each service's health and what keeps verdicts flowing."""
    s = await session(request)
    b = console(request).backend

    async def read(service: str) -> tuple[str, ops_pb2.ServiceStatus | None, str]:
        try:
            status = await b.ops(service).GetServiceStatus(ops_pb2.ServiceStatusRequest(), metadata=s.metadata,
                                                           timeout=HEALTH_TIMEOUT_S)  # fmt: skip
        except grpc.aio.AioRpcError as exc:
            return service, None, be.refusal(exc).message
        return service, status, ""

    readings = await asyncio.gather(*(read(name) for name in b.services))
    return page(request, "health.html", readings=readings)


async def reports(request: Request) -> Response:
    await session(request)
    return page(request, "reports.html", month=datetime.now(UTC).strftime("%Y-%m"))


async def _download(request: Request, chunks: Any) -> Response:
    """Stream a report: the first chunk is awaited before answering, so a refusal (another
    account's id, a bad month) is a page with its status, not a broken download."""
    iterator = chunks.__aiter__()
    first = await rpc(request, iterator.__anext__())

    async def body() -> AsyncIterator[bytes]:
        yield first.data
        async for chunk in iterator:
            yield chunk.data

    disposition = f"attachment; filename=\"{first.filename}\"; filename*=UTF-8''{quote(first.filename)}"
    return StreamingResponse(body(), media_type=first.content_type,
                             headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})  # fmt: skip


async def domain_report(request: Request) -> Response:
    s = await session(request)
    fmt = request.query_params.get("format", "pdf")
    ask = rpb.DomainReportRequest(domain_id=request.path_params["id"], format=fmt)
    return await _download(request, console(request).backend.reports.DomainReport(ask, metadata=s.metadata))


async def monthly_report(request: Request) -> Response:
    s = await session(request)
    q = request.query_params
    ask = rpb.MonthlyReportRequest(month=q.get("month", ""), format=q.get("format", "pdf"),
                                   time_zone=q.get("time_zone", ""))  # fmt: skip
    if not ask.month:
        raise HTTPException(400, "month: choose a month")
    return await _download(request, console(request).backend.reports.MonthlyReport(ask, metadata=s.metadata))


ROUTES = [
    Route("/signin", signin_form),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/contacts", contacts),
    Route("/contacts", add_contact, methods=["POST"]),
    Route("/contacts/{id}/remove", remove_contact, methods=["POST"]),
    Route("/quota", quota),
    Route("/health", health),
    Route("/reports", reports),
    Route("/reports/monthly", monthly_report),
    Route("/domains/{id}/report", domain_report),
]
