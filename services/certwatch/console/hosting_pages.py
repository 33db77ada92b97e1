"""Hosting in the console: subscriptions' instances with their state, year, next renewal and
last failure, an instance's lifecycle, "renew now", and the certificates (issued and
uploaded). Over the hosting gRPC API, as `certwatch hosting` uses it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from certwatch.console.web import console, page, read_form, rpc, session
from certwatch.v1 import hosting_pb2 as hpb


async def hosting(request: Request) -> Response:
    s = await session(request)
    b = console(request).backend
    instances = await rpc(request, b.hosting.ListInstances(hpb.ListInstancesRequest(), metadata=s.metadata))
    certificates = await rpc(request, b.hosting.ListCertificates(hpb.ListCertificatesRequest(),
                                                                 metadata=s.metadata))  # fmt: skip
    by_subscription: dict[str, list[hpb.Instance]] = {}
    for i in instances.instances:
        by_subscription.setdefault(i.subscription_id, []).append(i)
    return page(request, "hosting.html", subscriptions=sorted(by_subscription.items()),
                certificates=certificates.certificates)  # fmt: skip


async def subscribe(request: Request) -> Response:
    s = await session(request)
    form = await read_form(request, max_fields=5)
    years = str(form.get("years", ""))
    ask = hpb.SubscribeRequest(years=int(years) if years.isdigit() else 0)
    await rpc(request, console(request).backend.hosting.Subscribe(ask, metadata=s.metadata))
    return RedirectResponse("/hosting", status_code=303)


async def instance(request: Request) -> Response:
    s = await session(request)
    ref = hpb.InstanceRef(instance_id=request.path_params["id"])
    lifecycle = await rpc(request, console(request).backend.hosting.GetLifecycle(ref, metadata=s.metadata))
    return page(request, "hosting_instance.html", instance_id=ref.instance_id, lifecycle=lifecycle)


async def renew(request: Request) -> Response:
    s = await session(request)
    ref = hpb.InstanceRef(instance_id=request.path_params["id"])
    await rpc(request, console(request).backend.hosting.RenewNow(ref, metadata=s.metadata))
    return RedirectResponse(f"/hosting/{ref.instance_id}", status_code=303)


ROUTES = [
    Route("/hosting", hosting),
    Route("/hosting", subscribe, methods=["POST"]),
    Route("/hosting/{id}", instance),
    Route("/hosting/{id}/renew", renew, methods=["POST"]),
]
