"""The words of an immediate alert: the domain and port, the cause, the certificate, what to do.

Pure: the caller hands over the verdict and the facts of the certificates served (by address), so
every channel says the same thing, the recipient can act without opening the console, and the SMS
rendition stays within the gateways' fixed templates (counts only, no domain names).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from certwatch.notifier.channels.base import Message
from certwatch.notifier.channels.sms import template_text
from certwatch.notifier.rules import Event
from certwatch.rules.causes import CAUSE_INFO, Cause
from certwatch.rules.classify import Verdict

_CAUSE_OF = {
    Event.EXPIRED: Cause.EXPIRED,
    Event.ABOUT_TO_EXPIRE: Cause.ABOUT_TO_EXPIRE,
    Event.MISMATCH: Cause.CERTIFICATE_MISMATCH,
    Event.NO_CERTIFICATE: Cause.NO_SSL_CERTIFICATE,
    Event.CHAIN_FAILED: Cause.CHAIN_VALIDATION_FAILED,
    Event.NETWORK_FAILURE: Cause.NETWORK_CONNECTION_FAILURE,
}


@dataclass(frozen=True, slots=True)
class Served:
    """What one address served, as far as it is known (a missing fact is None)."""

    ip: str
    subject: str | None = None
    issuer: str | None = None
    not_after: datetime | None = None


def cause_of(event: Event, verdict: Verdict | None) -> Cause | None:
    if event is Event.ENABLE_FAILED:
        return verdict.primary_cause if verdict else None
    return _CAUSE_OF.get(event)


def _days(days_left: int | None) -> str | None:
    if days_left is None:
        return None
    if days_left < 0:
        return f"none, expired {-days_left} day{'s' if days_left != -1 else ''} ago"
    return str(days_left)


def _headline(event: Event, cause: Cause | None, days_left: int | None) -> str:
    if event is Event.RECOVERED:
        return "recovered: the certificate is valid again (SECURE)"
    if event is Event.CERTIFICATE_CHANGED:
        return "the served certificate changed unexpectedly"
    if event is Event.ENABLE_FAILED:
        return "monitoring could not be enabled" + (f": {CAUSE_INFO[cause].title}" if cause else "")
    if event is Event.ABOUT_TO_EXPIRE and days_left is not None:
        return f"the certificate expires in {days_left} day{'s' if days_left != 1 else ''}"
    return CAUSE_INFO[cause].title if cause else event.value


def _certificate_lines(served: Sequence[Served]) -> list[str]:
    lines = []
    for s in served:
        facts = [
            f"subject {s.subject}" if s.subject else None,
            f"issuer {s.issuer}" if s.issuer else None,
            f"expires {s.not_after.strftime('%Y-%m-%d %H:%M UTC')}" if s.not_after else None,
        ]
        known = ", ".join(f for f in facts if f)
        lines.append(f"Certificate served by {s.ip}: {known or 'none read'}")
    return lines


def render(
    event: Event,
    host: str,
    port: int,
    verdict: Verdict | None,
    *,
    recommended_action: str | None = None,
    served: Sequence[Served] = (),
    changes: Sequence[str] = (),
    service_ends_on: date | None = None,
) -> Message:
    """The alert for `event` on host:port, from the verdict that raised it (None for quota events)."""
    cause = cause_of(event, verdict)
    days_left = verdict.days_left if verdict else None
    headline = _headline(event, cause, days_left)
    subject = f"certwatch: {host}:{port} {headline}"
    lines = [f"{host}:{port}: {headline}."]
    if cause is not None:
        lines.append(f"Cause: {CAUSE_INFO[cause].title}. {CAUSE_INFO[cause].description}")
        if verdict is not None:
            lines += [
                f"- {x.detail}" for x in verdict.findings if x.cause is cause
            ]  # a detail names its address
    if changes:
        lines.append(f"What changed: {', '.join(c.lower().replace('_', ' ') for c in changes)}.")
    if event in (Event.SERVICE_ENDING, Event.SERVICE_ENDED):
        when = service_ends_on.isoformat() if service_ends_on else "soon"
        lines.append(
            f"Monitoring of this domain {'ended' if event is Event.SERVICE_ENDED else 'ends'} on {when}."
        )
    lines += _certificate_lines(served)
    days = _days(days_left)
    if days:
        lines.append(f"Days left: {days}.")
    action = _action(event, cause, verdict, recommended_action)
    if action:
        lines.append(f"Recommended action: {action}")
    text = "\n".join(lines) + "\n"
    markdown = f"### {subject}\n\n" + "\n\n".join(lines)
    page = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    sms_key = "RECOVERED" if event is Event.RECOVERED else ("ENABLE_FAILED" if event is Event.ENABLE_FAILED
                                                             else (cause.value if cause else None))  # fmt: skip
    sms = template_text({sms_key: 1}, days=max(days_left or 0, 0)) if sms_key else None
    data = {
        "event": event.value, "domain": host, "port": port, "cause": cause.value if cause else None,
        "status": verdict.status.value if verdict else None, "days_left": days_left, "action": action,
        "certificates": [{"ip": s.ip, "subject": s.subject, "issuer": s.issuer,
                          "not_after": s.not_after.isoformat() if s.not_after else None} for s in served],
    }  # fmt: skip
    return Message(subject, text, html=page, markdown=markdown, sms=sms, data=data)


def _action(event: Event, cause: Cause | None, verdict: Verdict | None, precise: str | None) -> str | None:
    if event is Event.RECOVERED:
        return None
    if event is Event.CERTIFICATE_CHANGED:
        return "If nobody on your side replaced it, check who controls the server and its DNS."
    if event is Event.SERVICE_ENDING:
        return "Buy or assign more monitoring quota so that monitoring continues."
    if event is Event.SERVICE_ENDED:
        return "Buy monitoring quota and enable monitoring again."
    if cause is None:
        return None
    if precise and verdict is not None and verdict.primary_cause is cause:
        return precise
    return CAUSE_INFO[cause].action
