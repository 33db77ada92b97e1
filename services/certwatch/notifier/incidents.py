"""Per-domain incident memory, and the alerts it decides, queued with the checkpoint that read them.

A projection of the domain, contact, quota-end, verdict and hosting (`hosting_alerts`) events.
For each verdict the pure `rules.on_verdict` folds it into the domain's memory and names the
events to announce; each one
is rendered once and queued for every channel of every contact of the domain under its
idempotency key, in the transaction that moves the checkpoint. A replay, a redelivery or a
second replica decides the same keys and queues nothing twice; the dispatcher sends them.

Events older than `MAX_ALERT_AGE` when applied (a first start over an old log, a rebuild) move
the memory but page no one: an alert is news, not history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.contracts import hosting as hc
from certwatch.contracts import status as sc
from certwatch.contracts.payload import decode
from certwatch.notifier import alert_text, contact_channels, hosting_alerts
from certwatch.notifier.channels.base import Message
from certwatch.notifier.delivery import Queued, enqueue
from certwatch.notifier.rules import (
    DomainRules,
    Drop,
    Event,
    Key,
    Memory,
    QuietHours,
    Suppression,
    Verdict,
    decide,
    on_ownership_changed,
    on_verdict,
)
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import RecordedEvent, subject_filter
from certwatch.platform.projection import Projection
from certwatch.platform.shredding import Vault
from certwatch.rules.causes import CAUSE_INFO

MAX_ALERT_AGE = timedelta(hours=6)
EVENT_TYPES = (
    dc.DOMAIN_ADDED, dc.DOMAIN_EDITED, dc.DOMAIN_REMOVED, dc.MONITORING_DISABLED, dc.MONITORING_STARTED,
    dc.SERVICE_ENDED, *cc.CONTACT_EVENTS, sc.DOMAIN_CLASSIFIED, sc.CERTIFICATE_CHAIN_OBSERVED,
    sc.OWNERSHIP_CHANGED, *hosting_alerts.EVENT_TYPES,
)  # fmt: skip
_DOMAIN_COLUMNS = (
    "d.domain_id::text, d.account_id::text, host, port, contact_ids, memory, coalesce(s.rules, '{}'),"
    " muted_until, service_ends_on, alerted_in"
)


@dataclass(frozen=True, slots=True)
class _Domain:
    domain_id: str
    account_id: str
    host: str
    port: int
    contact_ids: tuple[str, ...]
    memory: Memory
    rules: dict[str, Any]
    muted_until: datetime | None
    service_ends_on: date | None
    alerted_in: str | None


async def _domain(conn: Conn, domain_id: str) -> _Domain | None:
    return (await _domains(conn, [domain_id])).get(domain_id)


async def _domains(conn: Conn, domain_ids: Sequence[str]) -> dict[str, _Domain]:
    cur = await conn.execute(
        f"SELECT {_DOMAIN_COLUMNS} FROM notifier_domains d LEFT JOIN notifier_domain_settings s USING (domain_id)"
        " WHERE d.domain_id = ANY(%s::uuid[]) ORDER BY d.domain_id"
        " FOR UPDATE OF d",  # the expiry refresh folds in too: no lost update
        (list(domain_ids),),
    )
    return {row[0]: _Domain(row[0], row[1], row[2], int(row[3]), tuple(row[4]), Memory.from_dict(row[5]),
                            dict(row[6]), row[7], row[8], row[9]) for row in await cur.fetchall()}  # fmt: skip


async def account_rules(conn: Conn, account_id: str) -> tuple[dict[str, Any], QuietHours | None]:
    """The account's rule settings and quiet hours (none set: the defaults, no quiet hours)."""
    cur = await conn.execute(
        "SELECT rules, quiet_start, quiet_end, tz FROM notifier_accounts WHERE account_id = %s", (account_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return {}, None
    quiet = QuietHours(row[1], row[2], row[3]) if row[1] is not None and row[2] is not None else None
    return dict(row[0]), quiet


def effective_rules(account: dict[str, Any], domain: dict[str, Any]) -> DomainRules:
    """The domain's settings over the account's over the defaults."""
    return DomainRules.from_dict({**account, **domain})


class Incidents:
    """The projection's handler; `clock` decides which events are too old to page anyone."""

    def __init__(
        self, event_log: EventLog, settings: Settings, vault: Vault | None, clock: Callable[[], datetime]
    ) -> None:
        self._log = event_log
        self._settings = settings
        self._vault = vault
        self._clock = clock
        self._accounts: dict[str, tuple[dict[str, Any], QuietHours | None]] | None = None
        self._rows: dict[str, _Domain] = {}

    async def handle_batch(self, conn: Conn, events: Sequence[RecordedEvent]) -> None:
        # An account's rules are read once a page (no event changes them: the API does), and
        # the rows of the page's classified domains in one statement, each used by its first
        # verdict unless an event of the domain came before it (that one reads it again).
        self._accounts = {}
        classified = [str(e.data["domain_id"]) for e in events if e.type == sc.DOMAIN_CLASSIFIED]
        self._rows = await _domains(conn, classified) if classified else {}
        try:
            for event in events:
                if event.type != sc.DOMAIN_CLASSIFIED:
                    self._rows.pop(str(event.data.get("domain_id", "")), None)
                await self._apply(conn, event)
        finally:
            self._accounts = None
            self._rows = {}

    async def _account_rules(self, conn: Conn, account_id: str) -> tuple[dict[str, Any], QuietHours | None]:
        if self._accounts is None:
            return await account_rules(conn, account_id)
        if account_id not in self._accounts:
            self._accounts[account_id] = await account_rules(conn, account_id)
        return self._accounts[account_id]

    async def _apply(self, conn: Conn, event: RecordedEvent) -> None:
        fresh = self._clock() - event.recorded_at <= MAX_ALERT_AGE
        trace = event.metadata.get("traceparent")  # the deliveries' sends join the event's trace
        match decode(event):
            case dc.DomainAdded() as e:
                await conn.execute(
                    "INSERT INTO notifier_domains (domain_id, account_id, host, port, contact_ids)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO UPDATE SET host = excluded.host,"
                    " port = excluded.port, contact_ids = excluded.contact_ids",
                    (e.domain_id, e.account_id, e.host, e.port, list(e.contact_ids)),
                )  # fmt: skip
            case dc.DomainEdited() as e:
                await conn.execute(
                    "UPDATE notifier_domains SET host = coalesce(%s, host), port = %s,"
                    " contact_ids = coalesce(%s, contact_ids) WHERE domain_id = %s",
                    (e.host, e.port, None if e.contact_ids is None else list(e.contact_ids), e.domain_id),
                )
            case dc.DomainRemoved() as e:
                await conn.execute("DELETE FROM notifier_domains WHERE domain_id = %s", (e.domain_id,))
            case dc.MonitoringDisabled() as e:
                await self._forget_conditions(conn, e.domain_id)
            case dc.MonitoringStarted() as e:
                await conn.execute(
                    "UPDATE notifier_domains SET service_ends_on = %s WHERE domain_id = %s",
                    (e.service_ends_on, e.domain_id),
                )
            case dc.MonitoringServiceEnded() as e:
                await self._service_ended(conn, e, fresh, trace)
                await self._forget_conditions(conn, e.domain_id)
            case cc.ContactCreated() | cc.ContactUpdated() as e:
                await conn.execute(
                    "INSERT INTO notifier_contacts (contact_id, account_id, sealed) VALUES (%s, %s, %s)"
                    " ON CONFLICT (contact_id) DO UPDATE SET sealed = excluded.sealed",
                    (e.contact_id, e.account_id, e.sealed),
                )
            case cc.ContactDeleted() as e:
                await conn.execute("DELETE FROM notifier_contacts WHERE contact_id = %s", (e.contact_id,))
            case sc.DomainClassified() as e:
                await self._classified(conn, e, event, fresh)
            case sc.CertificateChainObserved() as e:
                await self._certificates(conn, e)
            case sc.OwnershipChanged() as e:
                await self._ownership(conn, e, event, fresh)
            case hc.ApplicationSubmitted() | hc.CertificateIssued() as e:  # renewals too (a subclass)
                await hosting_alerts.remember(conn, e)
                if isinstance(e, hc.CertificateRenewed) and fresh:
                    await self._hosting(conn, e.account_id, e.instance_id, e, trace)
            case hc.OrderFailed() | hc.HostingEnding() as e if fresh:
                await self._hosting(conn, e.account_id, e.instance_id, e, trace)
            case hc.UploadedCertificateExpiring() as e if fresh:
                await self._hosting(conn, e.account_id, e.certificate_id, e, trace)

    async def _hosting(
        self, conn: Conn, account_id: str, instance_id: str, e: hosting_alerts.Hosting, trace: str | None
    ) -> None:
        """Hosting's news to the contacts of the domains its certificate covers (or the account's)."""
        said = hosting_alerts.announcement(e, await hosting_alerts.names_of(conn, instance_id))
        if said is None:
            return
        account, quiet = await self._account_rules(conn, account_id)
        now = self._clock()
        for to in await hosting_alerts.recipients(conn, account_id, said.names, instance_id):
            if said.event not in effective_rules(account, to.rules).enabled:
                continue
            when = decide(now, 0, Suppression(quiet=quiet, muted_until=to.muted_until))
            if isinstance(when, Drop):
                continue
            await queue_for_contacts(conn, self._vault, self._settings, to.domain_id, account_id, to.contact_ids,
                                     said.event.value, said.incident, said.message, when.at, now, trace)  # fmt: skip

    async def _certificates(self, conn: Conn, e: sc.CertificateChainObserved) -> None:
        if not e.certificates:
            return
        columns = [
            [facts[k] for facts in e.certificates] for k in ("sha256", "subject", "issuer", "not_after")
        ]
        await conn.execute(  # the chain in one statement
            "INSERT INTO notifier_certificates (sha256, subject, issuer, not_after)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " ON CONFLICT (sha256) DO NOTHING",
            columns,
        )

    async def _forget_conditions(self, conn: Conn, domain_id: str) -> None:
        """Not monitored any more (disabled, or its service ended): no recovery is owed when it comes
        back and days passing raise nothing; the incident count goes on (it keys deliveries)."""
        domain = await _domain(conn, domain_id)
        if domain is not None:
            memory = Memory(incident=domain.memory.incident)
            await conn.execute(
                "UPDATE notifier_domains SET memory = %s, problem = NULL, classified = NULL WHERE domain_id = %s",
                (Jsonb(memory.to_dict()), domain_id),
            )

    async def _classified(
        self, conn: Conn, e: sc.DomainClassified, event: RecordedEvent, fresh: bool
    ) -> None:
        domain = self._rows.pop(e.domain_id, None) or await _domain(conn, e.domain_id)
        if domain is None:  # classified before its DomainAdded was seen: no contacts known yet
            await conn.execute(
                "INSERT INTO notifier_domains (domain_id, account_id, host, port) VALUES (%s, %s, %s, %s)",
                (e.domain_id, e.account_id, e.verdict.host, e.verdict.port),
            )
            domain = await _domain(conn, e.domain_id)
            assert domain is not None
        fired, incident = await self._fold(conn, domain, e, e.verdict.checked_at, event)
        if fired and fresh:
            await self._certificates_ahead(conn, event)
            await self._announce(conn, domain, e, fired, incident, event.metadata.get("traceparent"))

    async def _fold(
        self, conn: Conn, domain: _Domain, e: sc.DomainClassified, as_of: datetime,
        event: RecordedEvent | None = None,
    ) -> tuple[list[Event], int]:  # fmt: skip
        """Fold the verdict into the domain's memory; the events to announce and the incident now.
        With the `event` it came in, the verdict is also kept as the domain's latest (one UPDATE)."""
        v = e.verdict
        account, _ = await self._account_rules(conn, domain.account_id)
        seen = Verdict(v.status.value, frozenset(c.value for c in v.causes), v.days_left)
        memory, fired = on_verdict(
            domain.memory, seen, effective_rules(account, domain.rules), streak=e.streak
        )
        problem = _problem(v, memory, as_of)
        latest = event is not None
        await conn.execute(
            "UPDATE notifier_domains SET memory = %s, problem = %s,"
            " classified = CASE WHEN %s THEN %s ELSE classified END,"
            " checked_at = CASE WHEN %s THEN %s ELSE checked_at END,"
            " alerted_in = CASE WHEN %s THEN %s ELSE alerted_in END WHERE domain_id = %s",
            (Jsonb(memory.to_dict()), None if problem is None else Jsonb(problem), latest, Jsonb(e.to_data()),
             latest, e.verdict.checked_at, latest and bool(fired),
             str(event.transaction_id) if event else None, e.domain_id),
        )  # fmt: skip
        return fired, memory.incident

    async def _announce(
        self, conn: Conn, domain: _Domain, e: sc.DomainClassified, fired: list[Event], incident: int,
        trace: str | None = None,
    ) -> None:  # fmt: skip
        _, quiet = await self._account_rules(conn, domain.account_id)
        on = await served(conn, e)
        for kind in fired:
            message = alert_text.render(kind, domain.host, domain.port, e.verdict,
                                        recommended_action=e.recommended_action, served=on)  # fmt: skip
            await self._queue(conn, domain, kind, str(incident), message, quiet, trace)

    async def _certificates_ahead(self, conn: Conn, event: RecordedEvent) -> None:
        """The facts of a certificate first seen in this probe come in the chain event the classifier
        appended right after the verdict: read ahead for it, so the alert names the certificate."""
        after = await self._log.read_stream(event.stream_id, after_version=event.stream_version, conn=conn)
        for later in after:
            if later.transaction_id != event.transaction_id:
                break
            if later.type == sc.CERTIFICATE_CHAIN_OBSERVED:
                await self._certificates(conn, sc.CertificateChainObserved.of(later))

    async def refresh_expiry(self, conn: Conn, now: datetime) -> int:
        """Days pass without new verdicts (the classifier appends a verdict when it changes): fold each
        domain's last verdict in again with the days left as of `now`, so a threshold of 45 or 7 days
        fires on the day it is crossed. Unreachable domains are left alone (nothing new is known).
        The number of alerts queued."""
        cur = await conn.execute(
            "SELECT domain_id::text, classified FROM notifier_domains WHERE classified IS NOT NULL"
            " AND classified->'verdict'->>'days_left' IS NOT NULL"
            " AND NOT (classified->'verdict'->'causes') ? 'NETWORK_CONNECTION_FAILURE'"
            " AND (classified->'verdict'->>'checked_at')::timestamptz < %s FOR UPDATE SKIP LOCKED",
            (now - timedelta(days=1),),
        )
        queued = 0
        for domain_id, data in await cur.fetchall():
            e = sc.DomainClassified.from_data(data)
            assert e.verdict.days_left is not None
            days = e.verdict.days_left - (now.date() - e.verdict.checked_at.date()).days
            shifted = msgspec.structs.replace(
                e, verdict=msgspec.structs.replace(e.verdict, days_left=days), streak=1
            )
            domain = await _domain(conn, domain_id)
            assert domain is not None
            fired, incident = await self._fold(conn, domain, shifted, now)
            if fired:
                await self._announce(conn, domain, shifted, fired, incident)
                queued += len(fired)
        return queued

    async def _ownership(self, conn: Conn, e: sc.OwnershipChanged, event: RecordedEvent, fresh: bool) -> None:
        domain = await _domain(conn, e.domain_id)
        if domain is None or not fresh:
            return
        together = domain.alerted_in == str(event.transaction_id)  # the verdict of the same probe alerted
        account, quiet = await self._account_rules(conn, domain.account_id)
        by_hosting = await hosting_alerts.issued_recently(conn, domain.account_id, domain.host, e.observed_at)
        if not on_ownership_changed(
            e.kinds,
            effective_rules(account, domain.rules),
            alerted_with_it=together,
            renewed_by_hosting=by_hosting,
        ):
            return
        message = alert_text.render(
            Event.CERTIFICATE_CHANGED, domain.host, domain.port, None, changes=e.kinds
        )
        await self._queue(conn, domain, Event.CERTIFICATE_CHANGED, str(event.event_id), message, quiet,
                          event.metadata.get("traceparent"))  # fmt: skip

    async def _service_ended(
        self, conn: Conn, e: dc.MonitoringServiceEnded, fresh: bool, trace: str | None
    ) -> None:
        domain = await _domain(conn, e.domain_id)
        if domain is None or not fresh:
            return
        account, quiet = await self._account_rules(conn, domain.account_id)
        if Event.SERVICE_ENDED not in effective_rules(account, domain.rules).enabled:
            return
        message = alert_text.render(
            Event.SERVICE_ENDED, domain.host, domain.port, None, service_ends_on=e.ended_on
        )
        await self._queue(conn, domain, Event.SERVICE_ENDED, e.ended_on.isoformat(), message, quiet, trace)

    async def _queue(
        self,
        conn: Conn,
        domain: _Domain,
        event: Event,
        incident: str,
        message: Message,
        quiet: QuietHours | None,
        trace: str | None,
    ) -> int:
        """Queue `message` for every channel of every contact of `domain`; the number queued."""
        now = self._clock()
        when = decide(now, 0, Suppression(quiet=quiet, muted_until=domain.muted_until))
        if isinstance(when, Drop):
            return 0
        return await queue_for_contacts(conn, self._vault, self._settings, domain.domain_id, domain.account_id,
                                        domain.contact_ids, event.value, incident, message, when.at, now,
                                        trace)  # fmt: skip


async def queue_for_contacts(
    conn: Conn, vault: Vault | None, settings: Settings, domain_id: str, account_id: str,
    contact_ids: Sequence[str], event: str, incident: str, message: Message, at: datetime, now: datetime,
    trace: str | None = None,
) -> int:  # fmt: skip
    """Queue `message` for every channel of each contact; `trace` is the W3C traceparent of the event
    that decided it, so that each send is a span of that event's trace."""
    contacts = await contact_channels.open_contacts(conn, vault, contact_ids)
    queued = [
        Queued(Key(event, domain_id, contact_id, channel, incident), account_id, message, at, trace)
        for contact_id, contact in contacts.items()
        for channel in contact_channels.channel_names(contact, settings)
        if channel != "sms" or message.sms is not None
    ]
    return await enqueue(conn, queued, now)


def _problem(v: Any, memory: Memory, as_of: datetime) -> dict[str, Any] | None:
    """The domain's problem as a digest line (its primary cause, else the first condition it is in),
    with the days left as of `as_of`; None when it is in no alerting condition."""
    if not memory.active:
        return None
    cause = v.primary_cause or next(
        filter(None, (alert_text.cause_of(x, v) for x in sorted(memory.active))), None
    )
    if cause is None:
        return None
    info = CAUSE_INFO[cause]
    return {"cause": cause.value, "title": info.title, "action": info.action, "days_left": v.days_left,
            "checked_at": as_of.isoformat()}  # fmt: skip


async def served(conn: Conn, e: sc.DomainClassified) -> list[alert_text.Served]:
    """Each address with the facts known of the leaf it served."""
    leaves = {x.ip: x.leaf_sha256 for x in e.endpoints}
    known = [f for f in leaves.values() if f]
    facts: dict[str, tuple[str, str, datetime]] = {}
    if known:
        cur = await conn.execute(
            "SELECT sha256, subject, issuer, not_after FROM notifier_certificates WHERE sha256 = ANY(%s)",
            (known,),
        )
        facts = {row[0]: (row[1], row[2], row[3]) for row in await cur.fetchall()}
    out = []
    for ip, fingerprint in sorted(leaves.items()):
        f = facts.get(fingerprint or "")
        out.append(alert_text.Served(ip, *f) if f else alert_text.Served(ip))
    return out


def projection(event_log: EventLog, settings: Settings, vault: Vault | None, *,
               clock: Callable[[], datetime] | None = None,
               after_commit: Callable[[], None] | None = None) -> Projection:  # fmt: skip
    handler = Incidents(event_log, settings, vault, clock or (lambda: datetime.now(UTC)))
    return Projection(
        name="notifier.incidents", event_types=EVENT_TYPES, handle_batch=handler.handle_batch,
        subject=subject_filter(), after_commit=after_commit, page=500,
        reset_sql=["DELETE FROM notifier_domains", "DELETE FROM notifier_contacts", "DELETE FROM notifier_certificates",
                   "DELETE FROM notifier_hosting"],
    )  # fmt: skip
