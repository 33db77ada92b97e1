"""The daily digest and suppression over the real event log: the account's hour in its time zone,
one message per contact listing every affected domain, muted and acknowledged ones left out, quiet
hours deferring alerts, and the quota-ending warning."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.notifier import incidents
from certwatch.notifier.digests import DigestScheduler
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import catch_up
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from tests.support.verdicts import classified

SETTINGS = Settings(allow_custom_webhooks=True)
# 2026-06-01 01:05 UTC is 09:05 in Shanghai (UTC+8, no DST).
AFTER_NINE = datetime(2026, 6, 1, 1, 5, tzinfo=UTC)


async def _account(pool: AsyncConnectionPool[Any], **columns: Any) -> str:
    account_id = str(uuid.uuid4())
    names = ["account_id", *columns]
    async with pool.connection() as conn:
        await conn.execute(
            f"INSERT INTO notifier_accounts ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})".encode(),
            (account_id, *columns.values()),
        )
    return account_id


async def _contact(event_log: EventLog, vault: Vault, account_id: str) -> str:
    contact_id = str(uuid.uuid4())
    async with event_log.pool.connection() as conn:
        sealed = await vault.seal(
            conn, cc.sealed_subject(contact_id), {"name": "ops", "email": "ops@example.test"}
        )
    event = cc.ContactCreated(contact_id=contact_id, account_id=account_id, sealed=sealed, has_secret=False)
    await event_log.append(cc.stream_id(contact_id), [event.new_event()], expected_version=0)
    return contact_id


async def _broken(
    event_log: EventLog, account_id: str, contact_id: str, host: str, cause: str, at: datetime,
    ends_on: date | None = None,
) -> str:  # fmt: skip
    domain_id = str(uuid.uuid4())
    added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host=host, port=443,
                           contact_ids=(contact_id,), added_at=at)  # fmt: skip
    events = [added.new_event()]
    if ends_on is not None:
        events.append(dc.MonitoringStarted(domain_id=domain_id, account_id=account_id, generation=1,
                                           period_start=ends_on - timedelta(days=365), service_ends_on=ends_on,
                                           consumed_unit=True, started_at=at).new_event())  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), events, expected_version=0)
    verdict = classified(domain_id, account_id, "ABNORMAL", cause=cause, checked_at=at, host=host)
    await event_log.append(f"status-{domain_id}", [verdict], expected_version=None)
    return domain_id


async def _rows(pool: AsyncConnectionPool[Any], event: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT contact_id, channel, incident, message, next_attempt_at, domain_id FROM notifier_deliveries"
            " WHERE event = %s ORDER BY created_at",
            (event,),
        )
        return [tuple(r) for r in await cur.fetchall()]


async def test_one_digest_per_contact_at_the_account_hour_listing_every_domain(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    vault = Vault(parse_master_key(new_master_key()))
    account_id = await _account(pool, tz="Asia/Shanghai", digest_at=time(9, 0))
    contact_id = await _contact(event_log, vault, account_id)
    day_before = AFTER_NINE - timedelta(days=1)
    hosts = {"a.example.test": "EXPIRED", "b.example.test": "CERTIFICATE_MISMATCH",
             "c.example.test": "CHAIN_VALIDATION_FAILED", "d.example.test": "EXPIRED",
             "e.example.test": "EXPIRED"}  # fmt: skip
    ids = {h: await _broken(event_log, account_id, contact_id, h, c, day_before) for h, c in hosts.items()}
    await catch_up(event_log, incidents.projection(event_log, SETTINGS, vault, clock=lambda: day_before))
    async with pool.connection() as conn:  # d is acknowledged, e is muted past the digest
        await conn.execute(
            "INSERT INTO notifier_domain_settings (domain_id, account_id, acknowledged_incident, muted_until)"
            " VALUES (%s, %s, 1, NULL), (%s, %s, NULL, %s)",
            (
                ids["d.example.test"],
                account_id,
                ids["e.example.test"],
                account_id,
                AFTER_NINE + timedelta(hours=1),
            ),
        )

    def scheduler(at: datetime) -> DigestScheduler:
        return DigestScheduler(event_log, SETTINGS, vault, clock=lambda: at)

    assert await scheduler(AFTER_NINE - timedelta(minutes=10)).run_once() == 0  # 08:55 in Shanghai
    # Two replicas at 09:05: one digest for the contact's one channel.
    assert sorted(
        await asyncio.gather(scheduler(AFTER_NINE).run_once(), scheduler(AFTER_NINE).run_once())
    ) == [0, 1]
    assert await scheduler(AFTER_NINE + timedelta(hours=3)).run_once() == 0
    [(contact, channel, incident, message, _, domain)] = await _rows(pool, "digest")
    assert (contact, channel, incident, domain) == (contact_id, "email", "2026-06-01", "*")
    assert "3 domains need attention" in message["subject"]
    for host in ("a.example.test", "b.example.test", "c.example.test"):
        assert f"{host}:443" in message["text"]
    assert "d.example.test" not in message["text"] and "e.example.test" not in message["text"]
    assert "a.example.test:443: Certificate has expired. Purchase" in message["text"]
    # The next local day: the next digest.
    assert await scheduler(AFTER_NINE + timedelta(days=1)).run_once() == 1


async def test_quiet_hours_defer_an_alert_to_their_end(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    vault = Vault(parse_master_key(new_master_key()))
    # Quiet 22:00-07:00 in Berlin (UTC+2 in summer); the alert at 23:30 local waits until 07:00 local.
    account_id = await _account(pool, tz="Europe/Berlin", quiet_start=time(22), quiet_end=time(7))
    contact_id = await _contact(event_log, vault, account_id)
    at = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)
    await _broken(event_log, account_id, contact_id, "late.example.test", "EXPIRED", at)
    await catch_up(event_log, incidents.projection(event_log, SETTINGS, vault, clock=lambda: at))
    [(_, _, _, _, due, _)] = await _rows(pool, "expired")
    assert due == datetime(2026, 6, 2, 5, 0, tzinfo=UTC)


async def test_monitoring_ending_within_a_week_is_announced_once(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    vault = Vault(parse_master_key(new_master_key()))
    account_id = await _account(pool)
    contact_id = await _contact(event_log, vault, account_id)
    domain_id = await _broken(event_log, account_id, contact_id, "ending.example.test", "EXPIRED", AFTER_NINE,
                              ends_on=date(2026, 6, 4))  # fmt: skip
    await catch_up(event_log, incidents.projection(event_log, SETTINGS, vault, clock=lambda: AFTER_NINE))
    for day in range(2):
        at = AFTER_NINE + timedelta(days=day, hours=9)
        await DigestScheduler(event_log, SETTINGS, vault, clock=lambda at=at: at).run_once()
    [(_, channel, incident, message, _, domain)] = await _rows(pool, "service_ending")
    assert (channel, incident, domain) == ("email", "2026-06-04", domain_id)
    assert "Monitoring of this domain ends on 2026-06-04" in message["text"]


async def test_thresholds_fire_on_the_day_they_are_crossed_without_a_new_verdict(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    """The classifier appends a verdict only when it changes: days pass in the notifier's own clock."""
    vault = Vault(parse_master_key(new_master_key()))
    account_id = await _account(pool)
    contact_id = await _contact(event_log, vault, account_id)
    day0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    soon, later, off = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    for domain_id, host, status, cause, days, threshold in (
        (soon, "seven.example.test", "ABNORMAL", "ABOUT_TO_EXPIRE", 29, 7),  # the classifier's 30 days
        (later, "fortyfive.example.test", "SECURE", None, 50, 45),
        (off, "disabled.example.test", "ABNORMAL", "ABOUT_TO_EXPIRE", 29, 7),
    ):
        added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host=host, port=443,
                               contact_ids=(contact_id,), added_at=day0)  # fmt: skip
        await event_log.append(dc.stream_id(domain_id), [added.new_event()], expected_version=0)
        verdict = classified(
            domain_id, account_id, status, cause=cause, checked_at=day0, host=host, days_left=days
        )
        await event_log.append(f"status-{domain_id}", [verdict], expected_version=None)
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO notifier_domain_settings (domain_id, account_id, rules) VALUES (%s, %s, %s)",
                (domain_id, account_id, Jsonb({"expiry_threshold_days": threshold})),
            )
    disabled = dc.MonitoringDisabled(domain_id=off, account_id=account_id, disabled_at=day0)
    await event_log.append(dc.stream_id(off), [disabled.new_event()], expected_version=1)
    await catch_up(event_log, incidents.projection(event_log, SETTINGS, vault, clock=lambda: day0))
    assert await _rows(pool, "about_to_expire") == []

    async def alerts_on(day: int) -> list[str]:
        at = day0 + timedelta(days=day)
        await DigestScheduler(event_log, SETTINGS, vault, clock=lambda: at).run_once()
        return [r[5] for r in await _rows(pool, "about_to_expire")]

    assert await alerts_on(4) == []  # 46 days left
    assert await alerts_on(5) == [later]  # 45 left: the 45-day threshold
    assert await alerts_on(6) == [later]  # once
    assert await alerts_on(21) == [later]  # the other has 8 left
    assert await alerts_on(22) == [later, soon]  # 7 left (and nothing for the disabled one)
    [(_, _, _, message, _, _)] = [r for r in await _rows(pool, "about_to_expire") if r[5] == soon]
    assert "the certificate expires in 7 days" in message["subject"] and "Days left: 7." in message["text"]
