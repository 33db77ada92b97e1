"""The sender: claims due deliveries under a lease, sends them, records each outcome; retries wait
their backoff in the table (the schedule survives a restart), woken early when alerts are queued.

Any number of replicas may run: claims skip rows another holds (`delivery.claim_due`). On stop the
sends in flight finish and are recorded before the worker returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from certwatch.notifier import contact_channels, delivery
from certwatch.notifier.channels.base import Channel, Delivered, Delivery, Failed, http_client
from certwatch.notifier.channels.email import SmtpPool
from certwatch.notifier.settings import smtp_config
from certwatch.notifier.ticker import Ticker
from certwatch.platform import telemetry
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.shredding import Vault

log = logging.getLogger(__name__)

BATCH = 50
TICK_S = 1.0


class Dispatcher(Ticker):
    def __init__(
        self, event_log: EventLog, settings: Settings, vault: Vault | None, *,
        clock: Callable[[], datetime] | None = None, tick_s: float = TICK_S,
    ) -> None:  # fmt: skip
        super().__init__(tick_s, clock)
        self._log = event_log
        self._settings = settings
        self._vault = vault
        self._client: httpx.AsyncClient | None = None
        config = smtp_config(settings)
        # The round's emails share a few SMTP connections, closed when the round ends.
        self._smtp = SmtpPool(config) if config is not None else None
        # One channel object per contact channel while the contact is unchanged: a robot's rate
        # window (20 a minute) must span every alert to it, not restart with each.
        self._channels: dict[tuple[str, str, str], Channel] = {}

    async def backlog(self, conn: Conn) -> tuple[int, str]:
        """Deliveries due now and not yet taken (`certwatch status` shows it)."""
        cur = await conn.execute(
            "SELECT count(*) FROM notifier_deliveries WHERE state IN ('queued', 'retrying') AND next_attempt_at <= %s",
            (self._clock(),),
        )
        due = int(row[0]) if (row := await cur.fetchone()) else 0
        return due, "deliveries due" if due else ""  # what the lag counts, said when there is one

    async def run(self) -> None:
        async with http_client() as client:
            self._client = client
            await super().run()

    async def round(self) -> int:
        assert self._client is not None
        return await self.run_once(self._client)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One round: record interrupted sends, then send what is due (at most `BATCH`, at once) and
        record every outcome in one transaction; the number sent or tried."""
        await delivery.expire_leases(self._log, self._clock())
        claimed = await delivery.claim_due(self._log, self._clock(), BATCH)
        if not claimed:
            return 0
        async with self._log.pool.connection() as conn:
            contacts = await contact_channels.open_contacts(
                conn, self._vault, {c.key.contact_id for c in claimed}
            )
        try:
            outcomes = await asyncio.gather(
                *(self._send(client, c, contacts.get(c.key.contact_id)) for c in claimed)
            )
        finally:
            if self._smtp is not None:
                await self._smtp.close()
        results = await delivery.finish_many(
            self._log, list(zip(claimed, outcomes, strict=True)), self._clock()
        )
        for c, result in zip(claimed, results, strict=True):
            log.info("delivery %s over %s: %s", c.key.event, c.key.channel, result.outcome,
                     extra={"delivery": c.key.digest(), "domain_id": c.key.domain_id})  # fmt: skip
        return len(claimed)

    async def _send(
        self, client: httpx.AsyncClient, claimed: delivery.Claimed, contact: contact_channels.Contact | None
    ) -> Delivery:
        """One attempt, as a span of the trace of the event that decided it (the verdict's, when the
        classifier's verdict raised the alert), so one trace runs from AddDomains to the alert."""
        k = claimed.key
        parent = telemetry.context_from({"traceparent": claimed.traceparent} if claimed.traceparent else None)
        attributes: dict[str, str | int] = {
            "certwatch.event": k.event, "certwatch.channel": k.channel, "certwatch.domain_id": k.domain_id,
            "certwatch.delivery": k.digest(), "certwatch.attempt": claimed.attempt,
        }  # fmt: skip
        with telemetry.tracer().start_as_current_span(
            f"notifier send {k.channel}", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            outcome = await self._attempt(client, claimed, contact)
            span.set_attribute("certwatch.outcome", type(outcome).__name__)
            if not isinstance(outcome, Delivered):
                span.set_status(Status(StatusCode.ERROR, outcome.code))
            return outcome

    async def _attempt(
        self, client: httpx.AsyncClient, claimed: delivery.Claimed, contact: contact_channels.Contact | None
    ) -> Delivery:
        if contact is None:
            return Failed("contact", "the contact was deleted or its data redacted")
        channel = self._channel(client, claimed.key.contact_id, claimed.key.channel, contact)
        return channel if isinstance(channel, Failed) else await delivery.send(channel, claimed)

    def _channel(
        self, client: httpx.AsyncClient, contact_id: str, name: str, contact: contact_channels.Contact
    ) -> Channel | Failed:
        version = hashlib.sha256(repr(sorted(contact.items())).encode()).hexdigest()
        cached = self._channels.get((contact_id, name, version))
        if cached is not None:
            return cached
        built = contact_channels.build(name, contact, self._settings, client, self._smtp)
        if not isinstance(built, Failed):
            self._channels[(contact_id, name, version)] = built
        return built
