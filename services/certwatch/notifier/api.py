"""The Notifier gRPC API: rules, mute, acknowledge, a test message, the delivery log, the digest now.

Every call is scoped to the caller's account: another account's domain or contact answers
NOT_FOUND, exactly like an id that does not exist. Bad settings name the field and the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg.types.json import Jsonb

from certwatch.contracts import accounts
from certwatch.notifier import contact_channels, delivery, digest, digests
from certwatch.notifier.channels.base import Failed, Message, http_client
from certwatch.notifier.incidents import account_rules, effective_rules
from certwatch.notifier.rules import Event, Key, Memory
from certwatch.platform import auth
from certwatch.platform.config import Settings
from certwatch.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.shredding import Vault
from certwatch.platform.timestamps import timestamp
from certwatch.v1 import notifier_pb2 as pb
from certwatch.v1 import notifier_pb2_grpc

MAX_DELIVERIES = 1000
DEFAULT_DELIVERIES = 100
# The log's words for a delivery's state: still to be sent, being sent and waiting to retry are all "retrying".
OUTCOMES = {"sent": "delivered", "failed": "failed", "retrying": "retrying", "queued": "retrying",
            "pending": "retrying"}  # fmt: skip
TEST_MESSAGE = Message(
    subject="certwatch: test message",
    text="This is a test message from certwatch: alerts for your domains will reach you here.\n",
    markdown="### certwatch: test message\n\nAlerts for your domains will reach you here.",
    sms="certwatch: test message. Alerts for your domains will reach you here.",
)


def _uuid(raw: str, field: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidArgument([(field, f"not an id (a UUID): {raw[:64]!r}")]) from None


def _clock_time(raw: str, field: str) -> time:
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument([(field, f"must be a local time HH:MM, got {raw[:16]!r}")]) from None


class NotifierApi(notifier_pb2_grpc.NotifierServicer):
    def __init__(
        self, event_log: EventLog, settings: Settings, vault: Vault | None, *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), on_queued: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self._log = event_log
        self._settings = settings
        self._vault = vault
        self._clock = clock
        self._on_queued = on_queued

    async def _own_domain(self, conn: Conn, raw: str) -> str:
        domain_id = _uuid(raw, "domain_id")
        cur = await conn.execute(
            "SELECT 1 FROM notifier_domains WHERE domain_id = %s AND account_id = %s",
            (domain_id, auth.current().account_id),
        )
        if await cur.fetchone() is None:
            raise NotFound(f"no domain {domain_id} in this account")
        return domain_id

    async def _rules(self, conn: Conn, domain_id: str) -> pb.Rules:
        account_id = str(auth.current().account_id)
        account, quiet = await account_rules(conn, account_id)
        domain: dict[str, Any] = {}
        if domain_id:
            cur = await conn.execute(
                "SELECT rules FROM notifier_domain_settings WHERE domain_id = %s", (domain_id,)
            )
            row = await cur.fetchone()
            domain = dict(row[0]) if row else {}
        rules = effective_rules(account, domain)
        tz, at = await digests.account_clock(conn, account_id)
        return pb.Rules(
            domain_id=domain_id, expiry_threshold_days=rules.expiry_threshold_days,
            network_failures=rules.network_failures, enabled_events=sorted(rules.enabled), time_zone=tz,
            digest_at=at.strftime("%H:%M"), quiet_start=quiet.start.strftime("%H:%M") if quiet else "",
            quiet_end=quiet.end.strftime("%H:%M") if quiet else "", events=[e.value for e in Event],
        )  # fmt: skip

    async def GetRules(self, request: pb.RulesRequest, context: Any) -> pb.Rules:
        async with self._log.pool.connection() as conn:
            domain_id = await self._own_domain(conn, request.domain_id) if request.domain_id else ""
            return await self._rules(conn, domain_id)

    async def SetRules(self, request: pb.SetRulesRequest, context: Any) -> pb.Rules:
        account_id = str(auth.current().account_id)
        changes: dict[str, Any] = {}
        for name in ("expiry_threshold_days", "network_failures"):
            if request.HasField(name):
                changes[name] = getattr(request, name)
        if request.set_enabled_events:
            changes["enabled"] = list(request.enabled_events)
        async with self._log.pool.connection() as conn, conn.transaction():
            domain_id = await self._own_domain(conn, request.domain_id) if request.domain_id else ""
            if domain_id and any(
                request.HasField(f) for f in ("time_zone", "digest_at", "quiet_start", "quiet_end")
            ):
                raise InvalidArgument([("domain_id", "time zone, digest time and quiet hours are the account's;"
                                       " leave domain_id empty to set them")])  # fmt: skip
            table, key = (
                ("notifier_domain_settings", domain_id) if domain_id else ("notifier_accounts", account_id)
            )
            cur = await conn.execute(
                f"SELECT rules FROM {table} WHERE {'domain_id' if domain_id else 'account_id'} = %s".encode(),
                (key,),
            )
            row = await cur.fetchone()
            stored = {**(dict(row[0]) if row else {}), **changes}
            account, _ = await account_rules(conn, account_id)
            try:
                effective_rules(account if domain_id else {}, stored)
            except ValueError as exc:
                field, _, rule = str(exc).partition(": ")
                raise InvalidArgument([(field, rule)]) from None
            if domain_id:
                await conn.execute(
                    "INSERT INTO notifier_domain_settings (domain_id, account_id, rules) VALUES (%s, %s, %s)"
                    " ON CONFLICT (domain_id) DO UPDATE SET rules = excluded.rules",
                    (domain_id, account_id, Jsonb(stored)),
                )
            else:
                await self._set_account(conn, request, account_id, stored)
            return await self._rules(conn, domain_id)

    async def _set_account(
        self, conn: Conn, request: pb.SetRulesRequest, account_id: str, rules: dict[str, Any]
    ) -> None:
        await conn.execute(
            "INSERT INTO notifier_accounts (account_id, rules) VALUES (%s, %s)"
            " ON CONFLICT (account_id) DO UPDATE SET rules = excluded.rules",
            (account_id, Jsonb(rules)),
        )
        if request.HasField("time_zone"):
            try:
                ZoneInfo(request.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InvalidArgument(
                    [("time_zone", f"not an IANA time zone: {request.time_zone[:64]!r}")]
                ) from None
            await conn.execute("UPDATE notifier_accounts SET tz = %s WHERE account_id = %s",
                               (request.time_zone, account_id))  # fmt: skip
            # the account's one time-zone fact (reports read it); the column above is this service's copy
            zone = accounts.AccountTimeZoneSet(
                account_id=account_id, time_zone=request.time_zone, at=self._clock()
            )
            await self._log.append(accounts.stream_id(account_id), [zone.new_event()], expected_version=None,
                                   conn=conn)  # fmt: skip
        if request.HasField("digest_at"):
            await conn.execute("UPDATE notifier_accounts SET digest_at = %s WHERE account_id = %s",
                               (_clock_time(request.digest_at, "digest_at"), account_id))  # fmt: skip
        if request.HasField("quiet_start") or request.HasField("quiet_end"):
            if bool(request.quiet_start) != bool(request.quiet_end):
                raise InvalidArgument([("quiet_end", "give both quiet_start and quiet_end, or clear both")])
            start = _clock_time(request.quiet_start, "quiet_start") if request.quiet_start else None
            end = _clock_time(request.quiet_end, "quiet_end") if request.quiet_end else None
            await conn.execute("UPDATE notifier_accounts SET quiet_start = %s, quiet_end = %s WHERE account_id = %s",
                               (start, end, account_id))  # fmt: skip

    async def _alerts(self, conn: Conn, domain_id: str) -> pb.DomainAlerts:
        cur = await conn.execute(
            "SELECT memory, s.muted_until, s.acknowledged_incident FROM notifier_domains d"
            " LEFT JOIN notifier_domain_settings s USING (domain_id) WHERE d.domain_id = %s",
            (domain_id,),
        )
        row = await cur.fetchone()
        assert row is not None  # checked by _own_domain
        memory = Memory.from_dict(row[0])
        muted = row[1] if row[1] is not None and row[1] > self._clock() else None
        return pb.DomainAlerts(domain_id=domain_id, muted_until=timestamp(muted), incident=memory.incident,
                               acknowledged_incident=row[2] or 0, active=sorted(memory.active))  # fmt: skip

    async def _upsert_settings(self, conn: Conn, domain_id: str, column: str, value: Any) -> None:
        await conn.execute(
            f"INSERT INTO notifier_domain_settings (domain_id, account_id, {column}) VALUES (%s, %s, %s)"
            f" ON CONFLICT (domain_id) DO UPDATE SET {column} = excluded.{column}".encode(),
            (domain_id, auth.current().account_id, value),
        )

    async def Mute(self, request: pb.MuteRequest, context: Any) -> pb.DomainAlerts:
        until = request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None
        async with self._log.pool.connection() as conn, conn.transaction():
            domain_id = await self._own_domain(conn, request.domain_id)
            await self._upsert_settings(conn, domain_id, "muted_until", until)
            return await self._alerts(conn, domain_id)

    async def Acknowledge(self, request: pb.AcknowledgeRequest, context: Any) -> pb.DomainAlerts:
        async with self._log.pool.connection() as conn, conn.transaction():
            domain_id = await self._own_domain(conn, request.domain_id)
            alerts = await self._alerts(conn, domain_id)
            if not alerts.active:
                raise FailedPrecondition(f"domain {domain_id} has no open incident to acknowledge")
            await self._upsert_settings(conn, domain_id, "acknowledged_incident", alerts.incident)
            return await self._alerts(conn, domain_id)

    async def SendTestMessage(
        self, request: pb.SendTestMessageRequest, context: Any
    ) -> pb.TestMessageResults:
        contact_id = _uuid(request.contact_id, "contact_id")
        account_id = str(auth.current().account_id)
        async with self._log.pool.connection() as conn:
            contact = await contact_channels.latest_contact(
                conn, self._log, self._vault, contact_id, account_id
            )
        if contact is None:
            raise NotFound(f"no contact {contact_id} in this account")
        test_id = str(uuid.uuid4())  # each test is its own delivery: never deduplicated away
        results = []
        async with http_client() as client:
            for name in contact_channels.channel_names(contact, self._settings):
                channel = contact_channels.build(name, contact, self._settings, client)
                key = Key("test", "*", contact_id, name, test_id)
                if isinstance(channel, Failed):
                    outcome, detail = "failed", f"{channel.code}: {channel.message}"
                else:
                    result = await delivery.deliver(self._log, key, channel, TEST_MESSAGE, self._clock(),
                                                    account_id=account_id)  # fmt: skip
                    outcome, detail = OUTCOMES.get(result.outcome, result.outcome), result.detail
                results.append(pb.ChannelResult(channel=name, outcome=outcome, detail=detail))
        return pb.TestMessageResults(contact_id=contact_id, results=results)

    async def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: Any) -> pb.Deliveries:
        if bool(request.domain_id) == bool(request.contact_id):
            raise InvalidArgument([("domain_id", "give exactly one of domain_id and contact_id")])
        if not 0 <= request.limit <= MAX_DELIVERIES:
            raise InvalidArgument(
                [("limit", f"must be from 1 to {MAX_DELIVERIES} (0: {DEFAULT_DELIVERIES})")]
            )
        account_id = str(auth.current().account_id)
        async with self._log.pool.connection() as conn:
            if request.domain_id:
                column, value = "domain_id", await self._own_domain(conn, request.domain_id)
            else:
                column, value = "contact_id", _uuid(request.contact_id, "contact_id")
            cur = await conn.execute(
                "SELECT updated_at, event, contact_id, channel, state, detail, domain_id, attempts"
                f" FROM notifier_deliveries WHERE {column} = %s AND account_id = %s"
                " ORDER BY updated_at DESC, key LIMIT %s".encode(),
                (value, account_id, request.limit or DEFAULT_DELIVERIES),
            )
            rows = await cur.fetchall()
        return pb.Deliveries(deliveries=[
            pb.Delivery(time=timestamp(r[0]), event=r[1], contact_id=r[2], channel=r[3], outcome=OUTCOMES[r[4]],
                        detail=r[5] if r[4] != "queued" else "queued", domain_id=r[6], attempts=r[7])
            for r in rows
        ])  # fmt: skip

    async def SendDigest(self, request: pb.SendDigestRequest, context: Any) -> pb.DigestResult:
        account_id = str(auth.current().account_id)
        now = self._clock()
        async with self._log.pool.connection() as conn, conn.transaction():
            contacts, queued = await digests.queue_digest(conn, self._vault, self._settings, account_id, now)
            tz, _ = await digests.account_clock(conn, account_id)
            await digests.claim_day(conn, account_id, digest.local_day(now, tz), now)
        if queued and self._on_queued is not None:
            self._on_queued()
        return pb.DigestResult(contacts=contacts, queued=queued)


def registration(api: NotifierApi) -> tuple[Any, Any, str]:
    return (notifier_pb2_grpc.add_NotifierServicer_to_server, api, "certwatch.v1.Notifier")
