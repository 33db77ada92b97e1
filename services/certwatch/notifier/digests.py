"""Queue the daily digests: per account at its local hour, one message per contact listing every
affected domain (muted domains and acknowledged incidents left out), and the quota warnings.

The digest's idempotency key is (contact, channel, local day), and a day's run per account is
claimed in `notifier_digest_runs`, so replicas and `alerts digest --now` queue each one once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from certwatch.notifier import alert_text, contact_channels, digest
from certwatch.notifier.delivery import Queued, enqueue
from certwatch.notifier.incidents import Incidents, account_rules, queue_for_contacts
from certwatch.notifier.rules import Drop, Event, Memory, Suppression, decide, on_service_end
from certwatch.notifier.ticker import Ticker
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.shredding import Vault

TICK_S = 30.0
REFRESH_EVERY = timedelta(hours=1)
SERVICE_WARN_DAYS = 7


async def account_clock(conn: Conn, account_id: str) -> tuple[str, time]:
    """The account's time zone and local digest time (UTC and 09:00 unless set)."""
    cur = await conn.execute(
        "SELECT tz, digest_at FROM notifier_accounts WHERE account_id = %s", (account_id,)
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row else ("UTC", digest.DEFAULT_HOUR)


async def _problems(
    conn: Conn, account_id: str, now: datetime
) -> tuple[list[digest.Problem], dict[str, list[str]]]:
    cur = await conn.execute(
        "SELECT d.domain_id::text, host, port, contact_ids, problem, memory, s.muted_until, s.acknowledged_incident"
        " FROM notifier_domains d LEFT JOIN notifier_domain_settings s USING (domain_id)"
        " WHERE d.account_id = %s AND problem IS NOT NULL",
        (account_id,),
    )
    problems, contacts = [], {}
    for domain_id, host, port, contact_ids, problem, memory, muted_until, acked in await cur.fetchall():
        incident = Memory.from_dict(memory).incident
        if isinstance(decide(now, incident, Suppression(muted_until=muted_until, acknowledged_incident=acked),
                             reminder=True), Drop):  # fmt: skip
            continue
        days = problem.get("days_left")
        if days is not None:  # as of today, not as of the verdict
            days -= (now.date() - datetime.fromisoformat(problem["checked_at"]).date()).days
        problems.append(digest.Problem(domain_id, host, port, problem["cause"], problem["title"],
                                       problem["action"], days))  # fmt: skip
        contacts[domain_id] = list(contact_ids)
    return problems, contacts


async def queue_digest(conn: Conn, vault: Vault | None, settings: Settings, account_id: str,
                       now: datetime) -> tuple[int, int]:  # fmt: skip
    """Queue the account's digest of its local day: (contacts with something to report, messages queued)."""
    tz, _ = await account_clock(conn, account_id)
    _, quiet = await account_rules(conn, account_id)
    day = digest.local_day(now, tz)
    problems, contacts = await _problems(conn, account_id, now)
    when = decide(now, 0, Suppression(quiet=quiet))
    at = when.at if not isinstance(when, Drop) else now
    per_contact = digest.by_contact(problems, contacts)
    opened = await contact_channels.open_contacts(conn, vault, list(per_contact))
    messages = {contact_id: digest.compose(per_contact[contact_id], day) for contact_id in opened}
    queued = [
        Queued(digest.digest_key(contact_id, channel, day), account_id, messages[contact_id], at)
        for contact_id, contact in opened.items()
        for channel in contact_channels.channel_names(contact, settings)
    ]
    return len(per_contact), await enqueue(conn, queued, now)


async def claim_day(conn: Conn, account_id: str, day: date, now: datetime) -> bool:
    cur = await conn.execute(
        "INSERT INTO notifier_digest_runs (account_id, day, queued_at) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (account_id, day, now),
    )
    return await cur.fetchone() is not None


async def _service_ending(
    conn: Conn, vault: Vault | None, settings: Settings, account_id: str, now: datetime
) -> int:
    """Warn, once per service period, of domains whose monitoring ends within a week."""
    cur = await conn.execute(
        "SELECT domain_id::text, host, port, contact_ids, service_ends_on FROM notifier_domains"
        " WHERE account_id = %s AND service_ends_on BETWEEN %s AND %s",
        (account_id, now.date(), now.date() + timedelta(days=SERVICE_WARN_DAYS)),
    )
    queued = 0
    for domain_id, host, port, contact_ids, ends_on in await cur.fetchall():
        ends_at = datetime.combine(ends_on, time(0), tzinfo=UTC)
        if on_service_end(ends_at, now, SERVICE_WARN_DAYS) is not Event.SERVICE_ENDING:
            continue
        message = alert_text.render(Event.SERVICE_ENDING, host, port, None, service_ends_on=ends_on)
        queued += await queue_for_contacts(conn, vault, settings, domain_id, account_id, contact_ids,
                                           Event.SERVICE_ENDING.value, ends_on.isoformat(), message, now, now)  # fmt: skip
    return queued


class DigestScheduler(Ticker):
    """Each tick: every account whose local digest time has come today gets that day's digest."""

    def __init__(
        self, event_log: EventLog, settings: Settings, vault: Vault | None, *,
        clock: Callable[[], datetime] | None = None, tick_s: float = TICK_S,
        on_queued: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(tick_s, clock)
        self._log = event_log
        self._settings = settings
        self._vault = vault
        self._on_queued = on_queued
        self._incidents = Incidents(event_log, settings, vault, self._clock)
        self._refreshed_at: datetime | None = None

    async def round(self) -> int:
        queued = await self.run_once()
        if queued and self._on_queued is not None:
            self._on_queued()
        return queued

    async def run_once(self) -> int:
        """Queue what is due now (expiry thresholds crossed, hourly; digests; quota warnings); the
        number of messages (or alerts) queued."""
        now = self._clock()
        queued = 0
        if self._refreshed_at is None or now - self._refreshed_at >= REFRESH_EVERY:
            async with self._log.pool.connection() as conn, conn.transaction():
                queued += await self._incidents.refresh_expiry(conn, now)
            self._refreshed_at = now
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT d.account_id::text, coalesce(a.tz, 'UTC'), coalesce(a.digest_at, %s)"
                " FROM notifier_domains d LEFT JOIN notifier_accounts a USING (account_id)"
                " WHERE d.problem IS NOT NULL OR d.service_ends_on IS NOT NULL",
                (digest.DEFAULT_HOUR,),
            )
            accounts = await cur.fetchall()
        for account_id, tz, at in accounts:
            local = now.astimezone(ZoneInfo(tz))
            if local.time().replace(tzinfo=None) < at:
                continue
            async with self._log.pool.connection() as conn, conn.transaction():
                if await claim_day(conn, account_id, local.date(), now):
                    queued += (await queue_digest(conn, self._vault, self._settings, account_id, now))[1]
                    queued += await _service_ending(conn, self._vault, self._settings, account_id, now)
        return queued
