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

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

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
from certwatch.platform.page_tables import PageTable, Row
from certwatch.platform.projection import Projection
from certwatch.platform.shredding import Vault
from certwatch.rules.causes import CAUSE_INFO

MAX_ALERT_AGE = timedelta(hours=6)
EVENT_TYPES = (
    dc.DOMAIN_ADDED, dc.DOMAIN_EDITED, dc.DOMAIN_REMOVED, dc.MONITORING_DISABLED, dc.MONITORING_STARTED,
    dc.SERVICE_ENDED, *cc.CONTACT_EVENTS, sc.DOMAIN_CLASSIFIED, sc.CERTIFICATE_CHAIN_OBSERVED,
    sc.OWNERSHIP_CHANGED, *hosting_alerts.EVENT_TYPES,
)  # fmt: skip
# The projection's own rows, folded a page at a time (`_Page`); what users set per domain
# (`notifier_domain_settings`, kept across rebuilds) is read beside them, never written here.
# All but `classified` (the last verdict, for the expiry refresh): a page that changes a
# row does not always change its verdict, and that JSON is most of a row's bytes, so it is
# never read here, and written only with the rows whose verdict the page set
# (`_Page.classified`, `WITH_VERDICT`).
TABLE = PageTable("notifier_domains", "domain_id", {
    "domain_id": "uuid", "account_id": "uuid", "host": "text", "port": "integer", "contact_ids": "text[]",
    "memory": "jsonb", "problem": "jsonb", "checked_at": "timestamptz", "alerted_in": "text",
    "service_ends_on": "date",
})  # fmt: skip
WITH_VERDICT = PageTable(TABLE.name, TABLE.key, {**TABLE.columns, "classified": "jsonb"})
# A row as its first INSERT leaves it (the table's defaults), before the event's own columns.
_NEW_ROW: Row = {"contact_ids": [], "memory": {}, "problem": None, "checked_at": None, "alerted_in": None,
                 "service_ends_on": None}  # fmt: skip
# Events of one domain's row: a page loads the rows of all of theirs at once.
_DOMAIN_EVENTS = frozenset({
    dc.DOMAIN_ADDED, dc.DOMAIN_EDITED, dc.DOMAIN_REMOVED, dc.MONITORING_DISABLED, dc.MONITORING_STARTED,
    dc.SERVICE_ENDED, sc.DOMAIN_CLASSIFIED, sc.OWNERSHIP_CHANGED,
})  # fmt: skip
_NO_SETTINGS: tuple[dict[str, Any], datetime | None] = ({}, None)


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


class _Page:
    """The rows of the domains a page (or an expiry refresh) touches, folded in memory event by
    event and written back with one statement per table (`flush`). A statement per event was
    most of the notifier's CPU (psycopg adapting each one's parameters) and its share of
    PostgreSQL's. Rows are locked as they are loaded (`FOR UPDATE`, in key order), so the
    expiry refresh, which folds the same rows, waits instead of losing an update.

    Whatever reads the tables itself (a hosting alert's recipients, an alert's certificate
    facts) flushes first, so it reads what the events before it wrote."""

    def __init__(self) -> None:
        self.stored: dict[str, Row] = {}  # as last written
        self.rows: dict[str, Row | None] = {}  # as folded so far (None: no row)
        self.settings: dict[str, tuple[dict[str, Any], datetime | None]] = {}
        self.certificates: dict[str, tuple[str, str, str]] = {}  # to insert: the first facts seen of each
        self.classified: dict[str, dict[str, Any] | None] = {}  # verdicts to write (None: cleared)
        self.accounts: dict[str, tuple[dict[str, Any], QuietHours | None]] = {}  # rules, read once

    async def load(self, conn: Conn, domain_ids: Collection[str]) -> None:
        """Read (and lock) the rows of `domain_ids` not read yet, with the users' settings."""
        wanted = sorted({i for i in domain_ids if i not in self.rows})
        if not wanted:
            return
        found = await TABLE.load(conn, wanted, lock=True)
        cur = await conn.execute(
            "SELECT domain_id::text, rules, muted_until FROM notifier_domain_settings"
            " WHERE domain_id = ANY(%b::uuid[])",
            (wanted,),
        )
        settings = {r[0]: (dict(r[1]), r[2]) for r in await cur.fetchall()}
        for domain_id in wanted:
            row = found.get(domain_id)
            if row is not None:
                self.stored[domain_id] = row
            self.rows[domain_id] = row
            self.settings[domain_id] = settings.get(domain_id, _NO_SETTINGS)

    def domain(self, domain_id: str) -> _Domain | None:
        row = self.rows[domain_id]
        if row is None:
            return None
        rules, muted_until = self.settings[domain_id]
        return _Domain(row["domain_id"], row["account_id"], row["host"], int(row["port"]), tuple(row["contact_ids"]),
                       Memory.from_dict(row["memory"]), rules, muted_until, row["service_ends_on"],
                       row["alerted_in"])  # fmt: skip

    def new_row(self, domain_id: str, row: Row) -> None:
        """A row where there was none: no verdict, as a fresh INSERT leaves it (also where the
        page removed a stored row: it is written over, not deleted)."""
        self.rows[domain_id] = row
        self.classified[domain_id] = None

    def change(self, domain_id: str, **columns: Any) -> None:
        """Set columns of the domain's row, if it has one (an UPDATE ... WHERE domain_id)."""
        row = self.rows[domain_id]
        if row is not None:
            self.rows[domain_id] = {**row, **columns}

    def certificate(self, facts: Mapping[str, Any]) -> None:
        self.certificates.setdefault(facts["sha256"], (facts["subject"], facts["issuer"], facts["not_after"]))

    async def flush(self, conn: Conn) -> None:
        if self.certificates:
            shas, facts = list(self.certificates), list(self.certificates.values())
            self.certificates = {}
            await conn.execute(  # not_after as the event's text, parsed by PostgreSQL
                "INSERT INTO notifier_certificates (sha256, subject, issuer, not_after)"
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]::timestamptz[])"
                " ON CONFLICT (sha256) DO NOTHING",
                (shas, [f[0] for f in facts], [f[1] for f in facts], [f[2] for f in facts]),
            )
        verdicts, self.classified = self.classified, {}
        await TABLE.delete(conn, [k for k, row in self.rows.items() if row is None and k in self.stored])
        changed = {k: row for k, row in self.rows.items()
                   if row is not None and (k in verdicts or row != self.stored.get(k))}  # fmt: skip
        await TABLE.insert(
            conn, [row for k, row in changed.items() if k not in verdicts], on_conflict="update"
        )
        await WITH_VERDICT.insert(conn, [{**row, "classified": verdicts[k]} for k, row in changed.items()
                                         if k in verdicts], on_conflict="update")  # fmt: skip
        self.stored = {k: row for k, row in self.rows.items() if row is not None}


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
    """The projection's handler; `clock` decides which events are too old to page anyone.

    One instance serves the projection's pages and the expiry refresh, which may run at the
    same time: what a page holds lives in its `_Page`, passed along, never on the instance."""

    def __init__(
        self, event_log: EventLog, settings: Settings, vault: Vault | None, clock: Callable[[], datetime]
    ) -> None:
        self._log = event_log
        self._settings = settings
        self._vault = vault
        self._clock = clock

    async def handle_batch(self, conn: Conn, events: Sequence[RecordedEvent]) -> None:
        page = _Page()
        await page.load(conn, {str(e.data["domain_id"]) for e in events if e.type in _DOMAIN_EVENTS})
        for event in events:
            await self._apply(conn, page, event)
        await page.flush(conn)

    async def _account_rules(
        self, conn: Conn, page: _Page, account_id: str
    ) -> tuple[dict[str, Any], QuietHours | None]:
        """Read once a page: no event changes them (the API does)."""
        if account_id not in page.accounts:
            page.accounts[account_id] = await account_rules(conn, account_id)
        return page.accounts[account_id]

    async def _apply(self, conn: Conn, page: _Page, event: RecordedEvent) -> None:
        fresh = self._clock() - event.recorded_at <= MAX_ALERT_AGE
        trace = event.metadata.get("traceparent")  # the deliveries' sends join the event's trace
        match decode(event):
            case dc.DomainAdded() as e:
                columns = {"host": e.host, "port": e.port, "contact_ids": list(e.contact_ids)}
                if page.rows[e.domain_id] is None:
                    page.new_row(
                        e.domain_id, {**_NEW_ROW, "domain_id": e.domain_id, "account_id": e.account_id}
                    )
                page.change(e.domain_id, **columns)
            case dc.DomainEdited() as e:
                row = page.rows[e.domain_id]
                if row is not None:
                    page.change(e.domain_id, host=row["host"] if e.host is None else e.host, port=e.port,
                                contact_ids=row["contact_ids"] if e.contact_ids is None else list(e.contact_ids))  # fmt: skip
            case dc.DomainRemoved() as e:
                page.rows[e.domain_id] = None
            case dc.MonitoringDisabled() as e:
                self._forget_conditions(page, e.domain_id)
            case dc.MonitoringStarted() as e:
                page.change(e.domain_id, service_ends_on=e.service_ends_on)
            case dc.MonitoringServiceEnded() as e:
                await self._service_ended(conn, page, e, fresh, trace)
                self._forget_conditions(page, e.domain_id)
            case cc.ContactCreated() | cc.ContactUpdated() as e:
                await conn.execute(
                    "INSERT INTO notifier_contacts (contact_id, account_id, sealed) VALUES (%s, %s, %s)"
                    " ON CONFLICT (contact_id) DO UPDATE SET sealed = excluded.sealed",
                    (e.contact_id, e.account_id, e.sealed),
                )
            case cc.ContactDeleted() as e:
                await conn.execute("DELETE FROM notifier_contacts WHERE contact_id = %s", (e.contact_id,))
            case sc.DomainClassified() as e:
                await self._classified(conn, page, e, event, fresh)
            case sc.CertificateChainObserved() as e:
                for facts in e.certificates:
                    page.certificate(facts)
            case sc.OwnershipChanged() as e:
                await self._ownership(conn, page, e, event, fresh)
            case hc.ApplicationSubmitted() | hc.CertificateIssued() as e:  # renewals too (a subclass)
                await hosting_alerts.remember(conn, e)
                if isinstance(e, hc.CertificateRenewed) and fresh:
                    await self._hosting(conn, page, e.account_id, e.instance_id, e, trace)
            case hc.OrderFailed() | hc.HostingEnding() as e if fresh:
                await self._hosting(conn, page, e.account_id, e.instance_id, e, trace)
            case hc.UploadedCertificateExpiring() as e if fresh:
                await self._hosting(conn, page, e.account_id, e.certificate_id, e, trace)

    async def _hosting(
        self, conn: Conn, page: _Page, account_id: str, instance_id: str, e: hosting_alerts.Hosting,
        trace: str | None,
    ) -> None:  # fmt: skip
        """Hosting's news to the contacts of the domains its certificate covers (or the account's)."""
        said = hosting_alerts.announcement(e, await hosting_alerts.names_of(conn, instance_id))
        if said is None:
            return
        account, quiet = await self._account_rules(conn, page, account_id)
        now = self._clock()
        await page.flush(conn)  # the recipients are read from the domains' rows
        for to in await hosting_alerts.recipients(conn, account_id, said.names, instance_id):
            if said.event not in effective_rules(account, to.rules).enabled:
                continue
            when = decide(now, 0, Suppression(quiet=quiet, muted_until=to.muted_until))
            if isinstance(when, Drop):
                continue
            await queue_for_contacts(conn, self._vault, self._settings, to.domain_id, account_id, to.contact_ids,
                                     said.event.value, said.incident, said.message, when.at, now, trace)  # fmt: skip

    @staticmethod
    def _forget_conditions(page: _Page, domain_id: str) -> None:
        """Not monitored any more (disabled, or its service ended): no recovery is owed when it comes
        back and days passing raise nothing; the incident count goes on (it keys deliveries)."""
        domain = page.domain(domain_id)
        if domain is not None:
            memory = Memory(incident=domain.memory.incident)
            page.change(domain_id, memory=memory.to_dict(), problem=None)
            page.classified[domain_id] = None

    async def _classified(
        self, conn: Conn, page: _Page, e: sc.DomainClassified, event: RecordedEvent, fresh: bool
    ) -> None:
        if page.rows[e.domain_id] is None:  # classified before its DomainAdded was seen: no contacts yet
            page.new_row(e.domain_id, {**_NEW_ROW, "domain_id": e.domain_id, "account_id": e.account_id,
                                       "host": e.verdict.host, "port": e.verdict.port})  # fmt: skip
        domain = page.domain(e.domain_id)
        assert domain is not None
        fired, incident = await self._fold(conn, page, domain, e, e.verdict.checked_at, event)
        if fired and fresh:
            await self._certificates_ahead(conn, page, event)
            await self._announce(conn, page, domain, e, fired, incident, event.metadata.get("traceparent"))

    async def _fold(
        self, conn: Conn, page: _Page, domain: _Domain, e: sc.DomainClassified, as_of: datetime,
        event: RecordedEvent | None = None,
    ) -> tuple[list[Event], int]:  # fmt: skip
        """Fold the verdict into the domain's memory; the events to announce and the incident now.
        With the `event` it came in, the verdict is also kept as the domain's latest."""
        v = e.verdict
        account, _ = await self._account_rules(conn, page, domain.account_id)
        seen = Verdict(v.status.value, frozenset(c.value for c in v.causes), v.days_left)
        memory, fired = on_verdict(
            domain.memory, seen, effective_rules(account, domain.rules), streak=e.streak
        )
        page.change(domain.domain_id, memory=memory.to_dict(), problem=_problem(v, memory, as_of))
        if event is not None:
            page.change(domain.domain_id, checked_at=v.checked_at)
            page.classified[domain.domain_id] = e.to_data()
            if fired:
                page.change(domain.domain_id, alerted_in=str(event.transaction_id))
        return fired, memory.incident

    async def _announce(
        self, conn: Conn, page: _Page, domain: _Domain, e: sc.DomainClassified, fired: list[Event],
        incident: int, trace: str | None = None,
    ) -> None:  # fmt: skip
        _, quiet = await self._account_rules(conn, page, domain.account_id)
        await page.flush(conn)  # the certificates' facts are read from their table
        on = await served(conn, e)
        for kind in fired:
            message = alert_text.render(kind, domain.host, domain.port, e.verdict,
                                        recommended_action=e.recommended_action, served=on)  # fmt: skip
            await self._queue(conn, domain, kind, str(incident), message, quiet, trace)

    async def _certificates_ahead(self, conn: Conn, page: _Page, event: RecordedEvent) -> None:
        """The facts of a certificate first seen in this probe come in the chain event the classifier
        appended right after the verdict: read ahead for it, so the alert names the certificate."""
        after = await self._log.read_stream(event.stream_id, after_version=event.stream_version, conn=conn)
        for later in after:
            if later.transaction_id != event.transaction_id:
                break
            if later.type == sc.CERTIFICATE_CHAIN_OBSERVED:
                for facts in sc.CertificateChainObserved.of(later).certificates:
                    page.certificate(facts)

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
        due = await cur.fetchall()
        page = _Page()
        await page.load(conn, [domain_id for domain_id, _ in due])
        queued = 0
        for domain_id, data in due:
            e = sc.DomainClassified.from_data(data)
            assert e.verdict.days_left is not None
            days = e.verdict.days_left - (now.date() - e.verdict.checked_at.date()).days
            shifted = msgspec.structs.replace(
                e, verdict=msgspec.structs.replace(e.verdict, days_left=days), streak=1
            )
            domain = page.domain(domain_id)
            assert domain is not None
            fired, incident = await self._fold(conn, page, domain, shifted, now)
            if fired:
                await self._announce(conn, page, domain, shifted, fired, incident)
                queued += len(fired)
        await page.flush(conn)
        return queued

    async def _ownership(
        self, conn: Conn, page: _Page, e: sc.OwnershipChanged, event: RecordedEvent, fresh: bool
    ) -> None:
        domain = page.domain(e.domain_id)
        if domain is None or not fresh:
            return
        together = domain.alerted_in == str(event.transaction_id)  # the verdict of the same probe alerted
        account, quiet = await self._account_rules(conn, page, domain.account_id)
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
        self, conn: Conn, page: _Page, e: dc.MonitoringServiceEnded, fresh: bool, trace: str | None
    ) -> None:
        domain = page.domain(e.domain_id)
        if domain is None or not fresh:
            return
        account, quiet = await self._account_rules(conn, page, domain.account_id)
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
