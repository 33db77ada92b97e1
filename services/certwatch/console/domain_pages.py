"""Domain pages: the list (Status column, filters, search, paging, live), adding domains
(comma list or CSV upload, with a result per row), enable/disable/recheck/edit, and a
domain's Monitoring Details with its live status."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from certwatch.console import live
from certwatch.console.web import console, fragment, page, read_form, rpc, session
from certwatch.v1 import classifier_pb2 as cpb
from certwatch.v1 import inventory_pb2 as ipb

PAGE_SIZE = 50
STATUSES = ("ENABLING", "SECURE", "ABNORMAL", "ENABLE_FAILED", "NOT_ENABLED", "DISABLED", "SERVICE_ENDED")
CAUSES = ("NETWORK_CONNECTION_FAILURE", "NO_SSL_CERTIFICATE", "CERTIFICATE_MISMATCH",
          "CHAIN_VALIDATION_FAILED", "ABOUT_TO_EXPIRE", "EXPIRED", "CONNECTION_FAILURE",
          "INVALID_IP", "INVALID_DOMAIN", "INVALID_PORT")  # fmt: skip
_FILTERS = ("status", "cause", "max_days", "q", "page")


def _filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in _FILTERS}


def _list_request(f: dict[str, str]) -> ipb.ListDomainsRequest:
    request = ipb.ListDomainsRequest(page_size=PAGE_SIZE, page_token=f["page"], status=f["status"],
                                     cause=f["cause"], search=f["q"])  # fmt: skip
    if f["max_days"]:
        try:
            request.max_days_left, request.has_max_days_left = int(f["max_days"]), True
        except ValueError:
            raise HTTPException(400, "days left: a whole number") from None
    return request


def _row(domain: ipb.Domain) -> str:
    return fragment("_domain_row.html", d=domain)


async def domains(request: Request) -> Response:
    s = await session(request)
    f = _filters(request)
    found = await rpc(
        request, console(request).backend.inventory.ListDomains(_list_request(f), metadata=s.metadata)
    )
    rows = [_row(d) for d in found.domains]
    query = urlencode({k: v for k, v in f.items() if v})
    following = urlencode({**{k: v for k, v in f.items() if v}, "page": found.next_page_token})
    first = urlencode({k: v for k, v in f.items() if v and k != "page"})
    context: dict[str, Any] = {"rows": rows, "f": f, "query": query, "first": first, "next": following if found.next_page_token else "",
               "statuses": STATUSES, "causes": CAUSES, "count": len(rows)}  # fmt: skip
    if request.headers.get("hx-target") == "domain-table":
        return HTMLResponse(fragment("_domain_table.html", **context))
    return page(request, "domains.html", **context)


async def domain_events(request: Request) -> Response:
    """Live rows of the list page: the same query, re-read on every verdict."""
    s = await session(request)
    c = console(request)
    list_request = _list_request(_filters(request))

    async def read() -> dict[str, str]:
        found = await c.backend.inventory.ListDomains(list_request, metadata=s.metadata, timeout=5)
        return {f"row-{d.id}": _row(d) for d in found.domains}

    return _sse(live.stream(c.pulse, read, request.is_disconnected))


def _sse(events: Any) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip


async def _contacts(request: Request) -> list[Any]:
    s = await session(request)
    found = await rpc(request, console(request).backend.inventory.ListContacts(ipb.ListContactsRequest(),
                                                                               metadata=s.metadata))  # fmt: skip
    return list(found.contacts)


async def new_domains(request: Request) -> Response:
    await session(request)
    return page(request, "domain_new.html", contacts=await _contacts(request), results=None)


async def add_domains(request: Request) -> Response:
    s = await session(request)
    form = await read_form(request, max_files=1, max_fields=100)
    upload = form.get("csv")
    data = b"" if upload is None or isinstance(upload, str) else await upload.read()
    entries = str(form.get("domains", "")).strip()
    if not entries and not data:
        raise HTTPException(400, "domains: type some names, or choose a CSV file")
    port = str(form.get("port", "")).strip()
    if port and not port.isdigit():
        raise HTTPException(400, "port: a number from 1 to 65535")
    request_ = ipb.AddDomainsRequest(
        domains="" if data else entries, csv=data, port=int(port or 0), enable=form.get("enable") == "on",
        contact_ids=[str(v) for v in form.getlist("contact")],
    )  # fmt: skip
    added = await rpc(request, console(request).backend.inventory.AddDomains(request_, metadata=s.metadata))
    return page(request, "domain_new.html", contacts=await _contacts(request), results=added.results)


async def act(request: Request) -> Response:
    """Enable, disable or re-check one domain; htmx gets the row back, a plain form a redirect."""
    s = await session(request)
    inventory = console(request).backend.inventory
    domain_id, action = request.path_params["id"], request.path_params["action"]
    if action not in ("enable", "disable", "recheck"):
        raise HTTPException(404, "no such action")
    ref = ipb.DomainRef(id=domain_id)
    if action == "enable":
        await rpc(request, inventory.EnableMonitoring(ref, metadata=s.metadata))
    elif action == "disable":
        await rpc(request, inventory.DisableMonitoring(ref, metadata=s.metadata))
    else:
        answer = await rpc(request, inventory.RecheckDomains(ipb.RecheckDomainsRequest(ids=[domain_id]),
                                                             metadata=s.metadata))  # fmt: skip
        result = answer.results[0]
        if result.code:
            raise HTTPException(404 if result.code == "NOT_FOUND" else 409, result.error)
    domain = await rpc(request, inventory.GetDomain(ipb.GetDomainRequest(id=domain_id), metadata=s.metadata))
    if request.headers.get("hx-request"):
        return HTMLResponse(_row(domain))
    return RedirectResponse(f"/domains/{domain_id}", status_code=303)


async def edit(request: Request) -> Response:
    s = await session(request)
    form = await read_form(request, max_files=0, max_fields=200)
    port = str(form.get("port", "")).strip()
    if port and not port.isdigit():
        raise HTTPException(400, "port: a number from 1 to 65535")
    edit_request = ipb.EditDomainRequest(id=request.path_params["id"], port=int(port or 0), set_contacts=True,
                                         contact_ids=[str(v) for v in form.getlist("contact")])  # fmt: skip
    await rpc(request, console(request).backend.inventory.EditDomain(edit_request, metadata=s.metadata))
    return RedirectResponse(f"/domains/{request.path_params['id']}", status_code=303)


async def details(request: Request) -> Response:
    s = await session(request)
    b = console(request).backend
    domain_id = request.path_params["id"]
    report = await rpc(request, b.classifier.GetMonitoringDetails(cpb.StatusRequest(domain_id=domain_id),
                                                                  metadata=s.metadata))  # fmt: skip
    domain = await rpc(
        request, b.inventory.GetDomain(ipb.GetDomainRequest(id=domain_id), metadata=s.metadata)
    )
    intervals = await rpc(request, b.classifier.ListStatusIntervals(
        cpb.StatusIntervalsRequest(domain_id=domain_id, page_size=20), metadata=s.metadata))  # fmt: skip
    contacts = await _contacts(request)
    return page(request, "domain.html", r=report, d=domain, intervals=intervals.intervals, contacts=contacts,
                status=fragment("_status.html", d=domain))  # fmt: skip


async def details_events(request: Request) -> Response:
    s = await session(request)
    c = console(request)
    get = ipb.GetDomainRequest(id=request.path_params["id"])
    await rpc(request, c.backend.inventory.GetDomain(get, metadata=s.metadata))  # 404 before streaming

    async def read() -> dict[str, str]:
        domain = await c.backend.inventory.GetDomain(get, metadata=s.metadata, timeout=5)
        return {"status": fragment("_status.html", d=domain)}

    return _sse(live.stream(c.pulse, read, request.is_disconnected))


ROUTES = [
    Route("/domains", domains),
    Route("/domains/events", domain_events),
    Route("/domains/new", new_domains),
    Route("/domains/new", add_domains, methods=["POST"]),
    Route("/domains/{id}", details),
    Route("/domains/{id}/events", details_events),
    Route("/domains/{id}/edit", edit, methods=["POST"]),
    Route("/domains/{id}/{action:str}", act, methods=["POST"]),
]
