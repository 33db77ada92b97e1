"""Alerts in the console: the account's rules (thresholds, events, time zone, digest time,
quiet hours), a domain's mute, acknowledgement and delivery log, a contact's delivery log.
All over the notifier's gRPC API, as `certwatch alerts` uses it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from certwatch.console.web import console, page, read_form, rpc, session
from certwatch.v1 import classifier_pb2 as cpb
from certwatch.v1 import notifier_pb2 as npb

DELIVERIES = 200


async def rules(request: Request) -> Response:
    s = await session(request)
    found = await rpc(
        request, console(request).backend.notifier.GetRules(npb.RulesRequest(), metadata=s.metadata)
    )
    return page(request, "alerts.html", rules=found)


def _number(form: dict[str, str], name: str) -> int:
    try:
        return int(form[name])
    except ValueError:
        raise HTTPException(400, f"{name}: must be a whole number") from None


async def set_rules(request: Request) -> Response:
    """The account's rules as the form gives them (the notifier checks every value)."""
    s = await session(request)
    form = await read_form(request, max_fields=40)
    values = {k: str(form.get(k, "")).strip() for k in
              ("expiry_threshold_days", "network_failures", "time_zone", "digest_at", "quiet_start", "quiet_end")}  # fmt: skip
    notifier = console(request).backend.notifier
    ask = npb.SetRulesRequest(
        expiry_threshold_days=_number(values, "expiry_threshold_days"),
        network_failures=_number(values, "network_failures"),
        enabled_events=[str(e) for e in form.getlist("enabled_events")], set_enabled_events=True,
        digest_at=values["digest_at"], quiet_start=values["quiet_start"], quiet_end=values["quiet_end"],
    )  # fmt: skip
    current = await rpc(request, notifier.GetRules(npb.RulesRequest(), metadata=s.metadata))
    if values["time_zone"] != current.time_zone:  # the account's one time-zone fact: set when it changes
        ask.time_zone = values["time_zone"]
    await rpc(request, notifier.SetRules(ask, metadata=s.metadata))
    return RedirectResponse("/alerts", status_code=303)


async def _domain(request: Request, alerts: npb.DomainAlerts | None = None) -> Response:
    s = await session(request)
    b = console(request).backend
    domain_id = request.path_params["id"]
    details = await rpc(request, b.classifier.GetMonitoringDetails(cpb.StatusRequest(domain_id=domain_id),
                                                                   metadata=s.metadata))  # fmt: skip
    log = await rpc(request, b.notifier.ListDeliveries(npb.ListDeliveriesRequest(domain_id=domain_id,
                                                                                 limit=DELIVERIES),
                                                       metadata=s.metadata))  # fmt: skip
    domain_rules = await rpc(
        request, b.notifier.GetRules(npb.RulesRequest(domain_id=domain_id), metadata=s.metadata)
    )
    return page(request, "domain_alerts.html", d=details.details, domain_id=domain_id, log=log.deliveries,
                rules=domain_rules, alerts=alerts)  # fmt: skip


async def domain_alerts(request: Request) -> Response:
    return await _domain(request)


def _until(value: str, zone: str) -> datetime:
    """A `datetime-local` value in the account's zone."""
    try:
        local = datetime.fromisoformat(value)
        return local.replace(tzinfo=local.tzinfo or ZoneInfo(zone or "UTC")).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError):
        raise HTTPException(400, "until: must be a date and time, e.g. 2026-12-24T18:00") from None


async def mute(request: Request) -> Response:
    """Mute until the time given; an empty time unmutes."""
    s = await session(request)
    b = console(request).backend
    form = await read_form(request, max_fields=10)
    ask = npb.MuteRequest(domain_id=request.path_params["id"])
    if until := str(form.get("until", "")).strip():
        account = await rpc(request, b.notifier.GetRules(npb.RulesRequest(), metadata=s.metadata))
        ask.until.FromDatetime(_until(until, account.time_zone))
    return await _domain(request, await rpc(request, b.notifier.Mute(ask, metadata=s.metadata)))


async def acknowledge(request: Request) -> Response:
    s = await session(request)
    ask = npb.AcknowledgeRequest(domain_id=request.path_params["id"])
    return await _domain(request, await rpc(request, console(request).backend.notifier.Acknowledge(
        ask, metadata=s.metadata)))  # fmt: skip


async def contact_deliveries(request: Request) -> Response:
    s = await session(request)
    ask = npb.ListDeliveriesRequest(contact_id=request.path_params["id"], limit=DELIVERIES)
    log = await rpc(request, console(request).backend.notifier.ListDeliveries(ask, metadata=s.metadata))
    return page(request, "deliveries.html", contact_id=request.path_params["id"], log=log.deliveries)


ROUTES = [
    Route("/alerts", rules),
    Route("/alerts", set_rules, methods=["POST"]),
    Route("/domains/{id}/alerts", domain_alerts),
    Route("/domains/{id}/alerts/mute", mute, methods=["POST"]),
    Route("/domains/{id}/alerts/acknowledge", acknowledge, methods=["POST"]),
    Route("/contacts/{id}/deliveries", contact_deliveries),
]
