"""Alerts on what hosting did: a certificate renewed, a renewal (or first issuance) failed, hosting
ending, an uploaded certificate about to expire (`contracts.hosting.NOTIFIER_EVENTS`).

Hosting's events name a certificate instance and its names, not a monitored domain, so the
recipients are the contacts of the account's monitored domains that the certificate covers (each
contact once, under the first such domain, which keys the delivery and shows it in that domain's
log); with none monitored, every contact of the account. The notifier remembers each instance's
names (from the application) and when it last issued, so that a served certificate hosting just
renewed is not announced as an unexpected change.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from certwatch.contracts import hosting as hc
from certwatch.notifier.channels.base import Message
from certwatch.notifier.rules import Event
from certwatch.platform.eventlog import Conn

EVENT_TYPES = (hc.ApplicationSubmitted.TYPE, hc.CertificateIssued.TYPE, *hc.NOTIFIER_EVENTS)
RECENT_RENEWAL = timedelta(days=7)  # a changed certificate this soon after hosting issued one is hosting's
FAILURES_PAGED_EVERY = 5  # a failing renewal retries for days: page on the first failure, then every 5th

Hosting = (
    hc.ApplicationSubmitted
    | hc.CertificateIssued
    | hc.OrderFailed
    | hc.HostingEnding
    | hc.UploadedCertificateExpiring
)


def covers(names: Sequence[str], host: str) -> bool:
    """Whether a certificate for `names` serves `host` (a wildcard covers exactly one label)."""
    host = host.casefold().rstrip(".")
    for name in (n.casefold().rstrip(".") for n in names):
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:] and "." in host):
            return True
    return False


def failure_pages(failures: int) -> bool:
    return failures == 1 or failures % FAILURES_PAGED_EVERY == 0


@dataclass(frozen=True, slots=True)
class Announcement:
    event: Event
    incident: str  # with the event, domain and contact: the delivery's idempotency key
    names: tuple[str, ...]
    message: Message


def announcement(e: Hosting, names: Sequence[str]) -> Announcement | None:
    """What to announce for hosting event `e` of a certificate for `names` (None: nothing)."""
    match e:
        case hc.CertificateRenewed():
            c = e.certificate
            return _announce(Event.RENEWAL_DONE, e.certificate_id, c.names, "the hosted certificate was renewed",
                             [f"New certificate: issuer {c.issuer}, valid until {_when(c.not_after)}.",
                              "Nothing to do: certwatch serves it to your accelerated domains."])  # fmt: skip
        case hc.OrderFailed() if failure_pages(e.failures):
            what = "renewal" if e.renewal else "issuance"
            return _announce(Event.RENEWAL_FAILED, f"{e.attempt_id}:{e.failures}", names, f"certificate {what} failed",
                             [f"Cause: {e.kind.value.replace('_', ' ').lower()}: {e.detail}",
                              f"Failures in a row: {e.failures}. Next try: {_when(e.retry_at)}.",
                              _FAILED_ACTION[e.kind]])  # fmt: skip
        case hc.HostingEnding():
            expiry = f"Its last certificate expires {_when(e.last_expiry)}." if e.last_expiry else ""
            return _announce(Event.HOSTING_ENDING, e.instance_id, names, "certificate hosting is ending",
                             ["The subscription's last year is over: the certificate will not be renewed.",
                              *([expiry] if expiry else []),
                              "Recommended action: renew the hosting subscription, or install a certificate"
                              " of your own before it expires."])  # fmt: skip
        case hc.UploadedCertificateExpiring():
            return _announce(Event.UPLOAD_EXPIRING, f"{e.certificate_id}:{e.not_after.date()}", e.names,
                             "an uploaded certificate is about to expire",
                             [f"It expires {_when(e.not_after)}; certwatch cannot renew a certificate issued"
                              " elsewhere.", "Recommended action: upload its replacement."])  # fmt: skip
    return None


_FAILED_ACTION = {
    hc.FailureKind.CHALLENGE_FAILED: "Recommended action: check that the domain's DNS (or its HTTP path for"
    " http-01) still points where certwatch can answer the CA's challenge.",
    hc.FailureKind.CA_ERROR: "Recommended action: none yet; certwatch retries. If it keeps failing, contact support.",
    hc.FailureKind.RATE_LIMITED: "Recommended action: none; the CA's rate limit lifts by itself and certwatch retries.",
    hc.FailureKind.BAD_NONCE: "Recommended action: none; certwatch retries.",
    hc.FailureKind.CA_UNREACHABLE: "Recommended action: none yet; certwatch retries while the CA is unreachable.",
}


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "unknown"


def _announce(
    event: Event, incident: str, names: Sequence[str], headline: str, lines: list[str]
) -> Announcement:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    subject = f"certwatch: {shown}: {headline}"
    body = [f"{shown}: {headline}.", *lines]
    text = "\n".join(body) + "\n"
    markdown = f"### {subject}\n\n" + "\n\n".join(body)
    page = "".join(f"<p>{html.escape(line)}</p>" for line in body)
    sms = f"certwatch: {_SMS[event]}. Details by email and in the console."  # fixed: no domain names
    data: dict[str, Any] = {"event": event.value, "names": list(names), "headline": headline}
    return Announcement(event, incident, tuple(names), Message(subject, text, html=page, markdown=markdown,
                                                               sms=sms, data=data))  # fmt: skip


_SMS = {
    Event.RENEWAL_DONE: "a hosted certificate was renewed",
    Event.RENEWAL_FAILED: "a hosted certificate could not be renewed",
    Event.HOSTING_ENDING: "certificate hosting is ending",
    Event.UPLOAD_EXPIRING: "an uploaded certificate is about to expire",
}


async def remember(conn: Conn, e: hc.ApplicationSubmitted | hc.CertificateIssued) -> None:
    """An instance's names (from its application) and when hosting last issued for it."""
    if isinstance(e, hc.ApplicationSubmitted):
        await conn.execute(
            "INSERT INTO notifier_hosting (instance_id, account_id, names) VALUES (%s, %s, %s)"
            " ON CONFLICT (instance_id) DO UPDATE SET names = excluded.names",
            (e.instance_id, e.account_id, list(e.application.names)),
        )
        return
    await conn.execute(
        "INSERT INTO notifier_hosting (instance_id, account_id, names, issued_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (instance_id) DO UPDATE SET issued_at = excluded.issued_at",
        (e.instance_id, e.account_id, list(e.certificate.names), e.at),
    )


async def names_of(conn: Conn, instance_id: str) -> list[str]:
    cur = await conn.execute("SELECT names FROM notifier_hosting WHERE instance_id = %s", (instance_id,))
    row = await cur.fetchone()
    return list(row[0]) if row else []


async def issued_recently(conn: Conn, account_id: str, host: str, at: datetime) -> bool:
    """Whether hosting issued a certificate for `host` within `RECENT_RENEWAL` before `at`."""
    cur = await conn.execute(
        "SELECT names FROM notifier_hosting WHERE account_id = %s AND issued_at BETWEEN %s AND %s",
        (account_id, at - RECENT_RENEWAL, at + timedelta(minutes=5)),
    )
    return any(covers(row[0], host) for row in await cur.fetchall())


@dataclass(frozen=True, slots=True)
class Recipients:
    domain_id: str  # the first covered domain listing these contacts; the instance without one
    contact_ids: tuple[str, ...]
    rules: dict[str, Any]
    muted_until: datetime | None


async def recipients(conn: Conn, account_id: str, names: Sequence[str], instance_id: str) -> list[Recipients]:
    """Who hears of a certificate for `names`: see the module's docstring."""
    cur = await conn.execute(
        "SELECT d.domain_id::text, host, contact_ids, coalesce(s.rules, '{}'), s.muted_until FROM notifier_domains d"
        " LEFT JOIN notifier_domain_settings s USING (domain_id) WHERE d.account_id = %s ORDER BY host, d.domain_id",
        (account_id,),
    )  # fmt: skip
    covered = [row for row in await cur.fetchall() if covers(names, row[1])]
    if not covered:
        cur = await conn.execute(
            "SELECT contact_id::text FROM notifier_contacts WHERE account_id = %s ORDER BY contact_id",
            (account_id,),
        )
        everyone = tuple(row[0] for row in await cur.fetchall())
        return [Recipients(f"hosting-{instance_id}", everyone, {}, None)] if everyone else []
    seen: set[str] = set()
    out = []
    for domain_id, _, contact_ids, rules, muted_until in covered:
        fresh = tuple(c for c in contact_ids if c not in seen)
        seen.update(fresh)
        if fresh:
            out.append(Recipients(domain_id, fresh, dict(rules), muted_until))
    return out
