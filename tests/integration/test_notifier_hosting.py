"""Hosting's events, appended as the orchestrator appends them, reach the contacts of the domains
the certificate covers (or the account's), once each, in words; a certificate hosting just
renewed is no unexpected change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.contracts import hosting as hc
from certwatch.contracts import status as sc
from certwatch.contracts.payload import Payload
from certwatch.notifier import incidents
from certwatch.notifier.dispatcher import Dispatcher
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import catch_up, rebuild
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from tests.support.robot_servers import RobotState

SETTINGS = Settings(allow_custom_webhooks=True)
META = {"actor": "hosting"}


@pytest.fixture
def vault() -> Vault:
    return Vault(parse_master_key(new_master_key()))


async def _contact(event_log: EventLog, vault: Vault, account_id: str, robot_url: str, token: str) -> str:
    contact_id = str(uuid.uuid4())
    async with event_log.pool.connection() as conn:
        sealed = await vault.seal(conn, cc.sealed_subject(contact_id), {
            "name": token, "dingtalk_webhook": f"{robot_url}/robot/send?access_token={token}",
            "dingtalk_secret": "SEChostingsecret",
        })  # fmt: skip
    created = cc.ContactCreated(contact_id=contact_id, account_id=account_id, sealed=sealed, has_secret=True)
    await event_log.append(cc.stream_id(contact_id), [created.new_event()], expected_version=0)
    return contact_id


async def _domain(event_log: EventLog, account_id: str, host: str, contact_id: str) -> str:
    domain_id = str(uuid.uuid4())
    added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host=host, port=443,
                           contact_ids=(contact_id,), added_at=datetime.now(UTC))  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), [added.new_event()], expected_version=0)
    return domain_id


async def _hosting(event_log: EventLog, stream_id: str, *events: Payload) -> None:
    await event_log.append(stream_id, [e.new_event(metadata=META) for e in events], expected_version=None)


def _renewed(instance_id: str, account_id: str, names: list[str]) -> hc.CertificateRenewed:
    now = datetime.now(UTC)
    cert = hc.Certificate(serial="0a", not_before=now, not_after=now + timedelta(days=90), names=names,
                          issuer="Pebble Intermediate CA", cert_pem="-", chain_pem="-")  # fmt: skip
    return hc.CertificateRenewed(instance_id=instance_id, account_id=account_id, at=now,
                                 certificate_id=str(uuid.uuid4()), certificate=cert, sealed_key="sealed",
                                 order_url="https://ca/order/1", renew_at=now + timedelta(days=60),
                                 renew_source="lifetime")  # fmt: skip


async def _queued(pool: AsyncConnectionPool[Any], account_id: str) -> list[tuple[str, str, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event, domain_id, contact_id FROM notifier_deliveries WHERE account_id = %s"
            " ORDER BY created_at, event, contact_id", (account_id,),
        )  # fmt: skip
        return [tuple(r) for r in await cur.fetchall()]


async def test_hosting_events_alert_the_covered_domains_contacts_once(
    event_log: EventLog, pool: AsyncConnectionPool[Any], vault: Vault, robots: RobotState, robot_url: str,
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    robots.dingtalk.update({"shoptoken0123456": "SEChostingsecret", "othertoken012345": "SEChostingsecret"})
    account_id, instance_id = str(uuid.uuid4()), str(uuid.uuid4())
    shop_contact = await _contact(event_log, vault, account_id, robot_url, "shoptoken0123456")
    other_contact = await _contact(event_log, vault, account_id, robot_url, "othertoken012345")
    shop = await _domain(event_log, account_id, "img.cdn.shop.test", shop_contact)
    other = await _domain(event_log, account_id, "other.test", other_contact)
    names = ["shop.test", "*.cdn.shop.test"]
    application = hc.Application(names=names, key_type=hc.KeyType.EC256, company="Shop", contact_email="a@shop.test",
                                 validation=hc.Validation.HTTP_01)  # fmt: skip
    now = datetime.now(UTC)
    await _hosting(event_log, hc.stream_id(instance_id), hc.ApplicationSubmitted(
        instance_id=instance_id, account_id=account_id, at=now, application=application, automatic=False))  # fmt: skip
    projection = incidents.projection(event_log, SETTINGS, vault)

    # Renewal done: the covered domain's contact only, delivered in words.
    await _hosting(event_log, hc.stream_id(instance_id), _renewed(instance_id, account_id, names))
    await catch_up(event_log, projection)
    assert await _queued(pool, account_id) == [("renewal_done", shop, shop_contact)]
    assert await Dispatcher(event_log, SETTINGS, vault).run_once(http) == 1
    [got] = robots.of("dingtalk")
    text = got.body["markdown"]["text"]
    assert "shop.test, *.cdn.shop.test: the hosted certificate was renewed" in text and "Pebble" in text

    # Renewal failed pages on the first failure, then every fifth; hosting ending; all once.
    for failures in (1, 2, 3, 5):
        await _hosting(event_log, hc.stream_id(instance_id), hc.OrderFailed(
            instance_id=instance_id, account_id=account_id, at=now, attempt_id="a1", order_url=None,
            kind=hc.FailureKind.CHALLENGE_FAILED, detail="no TXT record", failures=failures,
            retry_at=now + timedelta(hours=1), renewal=True, order_abandoned=False))  # fmt: skip
    await _hosting(event_log, hc.stream_id(instance_id), hc.HostingEnding(
        instance_id=instance_id, account_id=account_id, at=now, subscription_id="s1", certificate_id=None,
        last_expiry=now + timedelta(days=80)))  # fmt: skip
    await catch_up(event_log, projection)
    assert [q[0] for q in await _queued(pool, account_id)] == [
        "renewal_done", "renewal_failed", "renewal_failed", "hosting_ending"]  # fmt: skip
    assert await Dispatcher(event_log, SETTINGS, vault).run_once(http) == 3
    # Deliveries go out side by side, so they are told apart by what they say, not by arrival order.
    texts = [r.body["markdown"]["text"] for r in robots.of("dingtalk")[1:]]
    failed = [t for t in texts if "certificate renewal failed" in t]
    assert len(failed) == 2 and all("no TXT record" in t and "DNS" in t for t in failed)
    assert len([t for t in texts if "certificate hosting is ending" in t]) == 1

    # An uploaded certificate for names no domain monitors: every contact of the account hears it.
    upload = str(uuid.uuid4())
    await _hosting(event_log, hc.cert_stream_id(upload), hc.UploadedCertificateExpiring(
        certificate_id=upload, account_id=account_id, names=["legacy.test"], not_after=now + timedelta(days=9),
        at=now))  # fmt: skip
    await catch_up(event_log, projection)
    assert sorted((q[1], q[2]) for q in (await _queued(pool, account_id))[4:]) == sorted(
        [(f"hosting-{upload}", shop_contact), (f"hosting-{upload}", other_contact)])  # fmt: skip

    # Switched off for the domain: a later renewal pages no one there.
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO notifier_domain_settings (domain_id, account_id, rules) VALUES (%s, %s, %s)",
            (shop, account_id, Jsonb({"enabled": ["expired", "renewal_failed"]})),
        )
    await _hosting(event_log, hc.stream_id(instance_id), _renewed(instance_id, account_id, names))
    await catch_up(event_log, projection)
    assert len(await _queued(pool, account_id)) == 6

    # A changed certificate right after hosting issued one is hosting's doing; elsewhere it is news.
    for domain_id in (shop, other):
        change = sc.OwnershipChanged(
            domain_id=domain_id,
            account_id=account_id,
            observed_at=datetime.now(UTC),
            kinds=("PUBLIC_KEY",),
            changes=(sc.Change("PUBLIC_KEY", ("a",), ("b",)),),
        )
        await event_log.append(f"status-{domain_id}", [change.new_event()], expected_version=None)
    await catch_up(event_log, projection)
    assert (await _queued(pool, account_id))[6:] == [("certificate_changed", other, other_contact)]

    # Replayed from the start: nothing is queued twice.
    await rebuild(event_log, projection)
    assert len(await _queued(pool, account_id)) == 7
