"""The notifier over the real event log: verdicts in, alerts queued once, sent once over local vendors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.contracts import notifications as nc
from certwatch.contracts import status as sc
from certwatch.notifier import delivery, incidents
from certwatch.notifier.channels.base import Delivered
from certwatch.notifier.dispatcher import Dispatcher
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import Projection, catch_up
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from tests.support.robot_servers import RobotState
from tests.support.verdicts import classified

SECRET = "SECnotifiersecret"
SETTINGS = Settings(allow_custom_webhooks=True)


@pytest.fixture
def state(robots: RobotState) -> RobotState:
    robots.dingtalk["tok"] = SECRET
    return robots


@pytest.fixture
def vault() -> Vault:
    return Vault(parse_master_key(new_master_key()))


@pytest.fixture
def projection(event_log: EventLog, vault: Vault) -> Projection:
    return incidents.projection(event_log, SETTINGS, vault)


async def _domain(
    event_log: EventLog, vault: Vault, robot_url: str, *, secret: str = SECRET, token: str = "tok"
) -> tuple[str, str]:
    """A domain with one contact that has a DingTalk robot; (domain id, account id)."""
    account_id, domain_id = str(uuid.uuid4()), str(uuid.uuid4())
    contact_id = await _robot_contact(event_log, vault, account_id, robot_url, secret=secret, token=token)
    added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host="shop.example.test", port=8443,
                           contact_ids=(contact_id,), added_at=datetime.now(UTC))  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), [added.new_event()], expected_version=0)
    return domain_id, account_id


async def _robot_contact(
    event_log: EventLog, vault: Vault, account_id: str, robot_url: str, *, secret: str = SECRET, token: str = "tok",
) -> str:  # fmt: skip
    """A contact of the account with a DingTalk robot; its id."""
    contact_id = str(uuid.uuid4())
    async with event_log.pool.connection() as conn:
        sealed = await vault.seal(conn, cc.sealed_subject(contact_id), {
            "name": "ops", "phone": None, "email": None,
            "dingtalk_webhook": f"{robot_url}/robot/send?access_token={token}", "dingtalk_secret": secret,
        })  # fmt: skip
    contact = cc.ContactCreated(contact_id=contact_id, account_id=account_id, sealed=sealed, has_secret=True)
    await event_log.append(cc.stream_id(contact_id), [contact.new_event()], expected_version=0)
    return contact_id


async def _verdict(event_log: EventLog, domain_id: str, account_id: str, status: str, cause: str | None = None,
                   streak: int = 1) -> None:  # fmt: skip
    event = classified(domain_id, account_id, status, cause=cause, streak=streak, checked_at=datetime.now(UTC),
                       host="shop.example.test")  # fmt: skip
    await event_log.append(f"status-{domain_id}", [event], expected_version=None)


async def _deliveries(pool: AsyncConnectionPool[Any], domain_id: str) -> list[tuple[str, str, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event, incident, state FROM notifier_deliveries WHERE domain_id = %s ORDER BY created_at, event",
            (domain_id,),
        )
        return [tuple(r) for r in await cur.fetchall()]


async def test_network_failure_pages_only_after_n_consecutive_by_streak(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str
) -> None:
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    net = "NETWORK_CONNECTION_FAILURE"
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", net, streak=1)
    await catch_up(event_log, projection)
    assert await _deliveries(pool, domain_id) == []  # one lost packet pages no one
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", net, streak=2)
    await catch_up(event_log, projection)
    assert await _deliveries(pool, domain_id) == [("network_failure", "1", "queued")]
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", net, streak=3)  # a repeat: no new alert
    await _verdict(event_log, domain_id, account_id, "SECURE")
    await catch_up(event_log, projection)
    assert await _deliveries(pool, domain_id) == [
        ("network_failure", "1", "queued"),
        ("recovered", "1", "queued"),
    ]

    # Settable per domain (1..5): at 3, a streak of 2 is still quiet.
    other, _ = await _domain(event_log, vault, robot_url)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO notifier_domain_settings (domain_id, account_id, rules) VALUES (%s, %s, %s)",
            (other, account_id, Jsonb({"network_failures": 3})),
        )
    for streak in (1, 2):
        await _verdict(event_log, other, account_id, "ABNORMAL", net, streak=streak)
    await catch_up(event_log, projection)
    assert await _deliveries(pool, other) == []
    await _verdict(event_log, other, account_id, "ABNORMAL", net, streak=3)
    await catch_up(event_log, projection)
    assert await _deliveries(pool, other) == [("network_failure", "1", "queued")]

    # The classifier's count is what decides: its first verdict seen here already has streak 2.
    third, _ = await _domain(event_log, vault, robot_url)
    await _verdict(event_log, third, account_id, "ABNORMAL", net, streak=2)
    await catch_up(event_log, projection)
    assert await _deliveries(pool, third) == [("network_failure", "1", "queued")]


async def test_alert_sent_once_with_its_words_and_recorded(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str,
    state: RobotState, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", "EXPIRED")
    await catch_up(event_log, projection)
    # Two replicas' dispatchers at once, then again: each key goes once.
    senders = [Dispatcher(event_log, SETTINGS, vault) for _ in range(2)]
    async with (
        pool.connection() as conn
    ):  # `certwatch status` names what its lag counts only when there is one
        assert await senders[0].backlog(conn) == (1, "deliveries due")
    counts = await asyncio.gather(*(s.run_once(http) for s in senders))
    assert sorted(counts) == [0, 1]
    async with pool.connection() as conn:
        assert await senders[0].backlog(conn) == (0, "")
    assert await senders[0].run_once(http) == 0
    [got] = state.of("dingtalk")
    text = got.body["markdown"]["text"]
    assert "shop.example.test:8443" in text and "Certificate has expired" in text
    assert "Recommended action: Purchase and configure a new SSL certificate" in text
    assert await _deliveries(pool, domain_id) == [("expired", "1", "sent")]
    # A replay of the whole log (a redelivery, a rebuild) queues nothing new.
    async with pool.connection() as conn:
        await conn.execute("UPDATE checkpoints SET position = 0, transaction_id = '0' WHERE name = %s",
                           (projection.name,))  # fmt: skip
        for sql in projection.reset_sql:
            await conn.execute(sql)
    await catch_up(event_log, projection)
    assert await senders[1].run_once(http) == 0
    assert len(state.of("dingtalk")) == 1
    [sent] = [e for e in await event_log.read_all((0, 0)) if e.type == nc.NOTIFICATION_SENT]
    outcome = nc.NotificationSent.of(sent)
    assert (outcome.event, outcome.domain_id, outcome.channel, outcome.attempts) == (
        "expired", domain_id, "dingtalk", 1)  # fmt: skip
    assert SECRET not in str(sent.data) and "access_token" not in str(sent.data)


async def test_final_failure_is_recorded_and_blocks_nothing(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str,
    state: RobotState, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    bad, account_id = await _domain(event_log, vault, robot_url, secret="SECwrong")
    good, _ = await _domain(event_log, vault, robot_url)
    for domain_id in (bad, good):
        await _verdict(event_log, domain_id, account_id, "ABNORMAL", "CERTIFICATE_MISMATCH")
    await catch_up(event_log, projection)
    assert await Dispatcher(event_log, SETTINGS, vault).run_once(http) == 2
    assert await _deliveries(pool, bad) == [("mismatch", "1", "failed")]
    assert await _deliveries(pool, good) == [("mismatch", "1", "sent")]
    assert len(state.of("dingtalk")) == 1
    [failed] = [nc.NotificationFailed.of(e) for e in await event_log.read_all((0, 0))
                if e.type == nc.NOTIFICATION_FAILED]  # fmt: skip
    assert (failed.domain_id, failed.detail) == (bad, "310000: sign not match")


async def test_a_sender_that_dies_mid_send_never_causes_a_second_send(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str,
    state: RobotState, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", "EXPIRED")
    await catch_up(event_log, projection)
    now = datetime.now(UTC)
    [held] = await delivery.claim_due(event_log, now, 10)  # claimed, then the process is killed
    # A restarted notifier within the lease leaves it alone; after the lease, records it failed.
    assert await Dispatcher(event_log, SETTINGS, vault).run_once(http) == 0
    later = Dispatcher(event_log, SETTINGS, vault, clock=lambda: now + delivery.LEASE + timedelta(seconds=1))
    assert await later.run_once(http) == 0
    assert await _deliveries(pool, domain_id) == [("expired", "1", "failed")]
    assert state.of("dingtalk") == []
    [failed] = [nc.NotificationFailed.of(e) for e in await event_log.read_all((0, 0))
                if e.type == nc.NOTIFICATION_FAILED]  # fmt: skip
    assert failed.detail == delivery.INTERRUPTED and failed.key == held.key.digest()
    # The dead sender's late answer does not overwrite what was recorded.
    late = await delivery.finish(event_log, held, Delivered(), now)
    assert late.outcome == "failed" and await _deliveries(pool, domain_id) == [("expired", "1", "failed")]


async def test_old_events_move_memory_but_page_no_one(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, robot_url: str
) -> None:
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", "EXPIRED")
    future = incidents.projection(
        event_log, SETTINGS, vault, clock=lambda: datetime.now(UTC) + timedelta(days=1)
    )
    await catch_up(event_log, future)
    assert await _deliveries(pool, domain_id) == []


async def test_alert_names_the_certificate_its_probe_observed(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str
) -> None:
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    now = datetime.now(UTC)
    verdict = classified(domain_id, account_id, "ABNORMAL", cause="EXPIRED", checked_at=now)
    data = {**verdict.data, "endpoints": [{"ip": "192.0.2.7", "status": "ABNORMAL", "phase": "done",
                                           "leaf_sha256": "ab" * 32}]}  # fmt: skip
    chain = sc.CertificateChainObserved(
        domain_id=domain_id, account_id=account_id, observed_at=now, serving={"192.0.2.7": ("ab" * 32,)},
        certificates=({"sha256": "ab" * 32, "subject": "CN=shop.example.test", "issuer": "CN=Test CA",
                       "not_after": "2026-01-02T00:00:00+00:00"},),
    )  # fmt: skip
    await event_log.append(
        sc.stream_id(domain_id), [verdict._replace(data=data), chain.new_event()], expected_version=None
    )
    await catch_up(event_log, projection)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT message FROM notifier_deliveries WHERE domain_id = %s", (domain_id,))
        [(message,)] = await cur.fetchall()
    assert (
        "Certificate served by 192.0.2.7: subject CN=shop.example.test, issuer CN=Test CA,"
        " expires 2026-01-02 00:00 UTC" in message["text"]
    ), message["text"]


async def test_racing_senders_send_each_delivery_once(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str,
    state: RobotState, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    domains = []
    for n in range(24):  # a robot each: the fake's 20-a-minute limit is not what is tested here
        state.dingtalk[f"tok{n}"] = SECRET
        domain_id, account_id = await _domain(event_log, vault, robot_url, token=f"tok{n}")
        await _verdict(event_log, domain_id, account_id, "ABNORMAL", "EXPIRED")
        domains.append(domain_id)
    await catch_up(event_log, projection)
    senders = [Dispatcher(event_log, SETTINGS, vault) for _ in range(4)]

    async def rounds(sender: Dispatcher) -> int:
        return sum([await sender.run_once(http) for _ in range(5)])

    assert sum(await asyncio.gather(*(rounds(s) for s in senders))) == 24
    assert sorted(r.robot for r in state.of("dingtalk")) == sorted(f"tok{n}" for n in range(24))
    for domain_id in domains:
        assert await _deliveries(pool, domain_id) == [("expired", "1", "sent")]


async def test_every_channel_a_contact_carries_is_alerted(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str,
    state: RobotState, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    state.wecom.add("wkey")
    state.lark["hook1"] = "larksecret"
    state.webhook_secret = "whsecret"
    account_id, domain_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    async with pool.connection() as conn:
        sealed = await vault.seal(conn, cc.sealed_subject(contact_id), {
            "name": "everywhere", "apprise_url": robot_url.replace("http://", "json://") + "/apprise",
            "wecom_webhook": f"{robot_url}/cgi-bin/webhook/send?key=wkey",
            "lark_webhook": f"{robot_url}/open-apis/bot/v2/hook/hook1", "lark_secret": "larksecret",
            "webhook_url": f"{robot_url}/hook", "webhook_secret": "whsecret",
        })  # fmt: skip
    contact = cc.ContactCreated(contact_id=contact_id, account_id=account_id, sealed=sealed, has_secret=True)
    await event_log.append(cc.stream_id(contact_id), [contact.new_event()], expected_version=0)
    added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host="chat.example.test", port=443,
                           contact_ids=(contact_id,), added_at=datetime.now(UTC))  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), [added.new_event()], expected_version=0)
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", "EXPIRED")
    await catch_up(event_log, projection)
    assert await Dispatcher(event_log, SETTINGS, vault).run_once(http) == 4
    assert "chat.example.test:443" in state.of("apprise")[0].body["title"]
    assert "chat.example.test:443" in state.of("wecom")[0].body["markdown"]["content"]
    assert "chat.example.test:443" in state.of("lark")[0].body["content"]["text"]
    [hook] = state.of("webhook")
    assert hook.body["data"]["event"] == "expired" and hook.body["data"]["domain"] == "chat.example.test"
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT channel, state FROM notifier_deliveries WHERE domain_id = %s ORDER BY 1",
                                 (domain_id,))  # fmt: skip
        assert [tuple(r) for r in await cur.fetchall()] == [
            ("apprise", "sent"), ("lark", "sent"), ("webhook", "sent"), ("wecom", "sent")]  # fmt: skip


async def test_a_shredded_contact_is_not_alerted_and_the_others_are(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str
) -> None:
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    other, _ = await _domain(event_log, vault, robot_url)
    await catch_up(event_log, projection)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT contact_ids[1] FROM notifier_domains WHERE domain_id = %s", (domain_id,)
        )
        row = await cur.fetchone()
        assert row is not None
        await Vault.shred(conn, cc.sealed_subject(row[0]))  # the contact was deleted: its data is unreadable
    for d in (domain_id, other):
        await _verdict(event_log, d, account_id, "ABNORMAL", "EXPIRED")
    await catch_up(event_log, projection)
    assert await _deliveries(pool, domain_id) == []
    assert await _deliveries(pool, other) == [("expired", "1", "queued")]


async def test_a_verdict_in_the_page_of_an_edit_alerts_the_contacts_after_the_edit(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, projection: Projection, robot_url: str,
) -> None:  # fmt: skip
    """A page reads its classified domains' rows at once; an earlier event of the page that
    changed a row (here its contacts) must be what the verdict sees."""
    domain_id, account_id = await _domain(event_log, vault, robot_url)
    await catch_up(event_log, projection)
    other = await _robot_contact(event_log, vault, account_id, robot_url)
    edited = dc.DomainEdited(domain_id=domain_id, account_id=account_id, port=8443, contact_ids=(other,))
    await event_log.append(dc.stream_id(domain_id), [edited.new_event()], expected_version=None)
    await _verdict(event_log, domain_id, account_id, "ABNORMAL", "EXPIRED")
    assert await catch_up(event_log, projection) == 3  # the contact, the edit and the verdict: one page
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT contact_id FROM notifier_deliveries WHERE domain_id = %s", (domain_id,)
        )
        assert [r[0] for r in await cur.fetchall()] == [other]
