"""The delivery log against real PostgreSQL and local vendor servers: each key sends once, failures don't block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.notifier.channels import dingtalk, webhook
from certwatch.notifier.channels.base import Message, http_client
from certwatch.notifier.delivery import deliver
from certwatch.notifier.rules import Key
from certwatch.platform.eventlog import EventLog
from tests.support.robot_servers import RobotState, robot_server

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
MSG = Message(subject="certwatch: www.example.test:443 expired", text="Renew the certificate.")


@pytest.fixture
def state() -> RobotState:
    return RobotState(dingtalk={"tok": "SECding"}, webhook_secret="whsecret")


@pytest.fixture
def base(state: RobotState) -> Iterator[str]:
    with robot_server(state) as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as c:
        yield c


async def _row(pool: AsyncConnectionPool[Any], key: Key) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT state, attempts, detail, next_attempt_at FROM notifier_deliveries WHERE key = %s",
            (key.digest(),),
        )
        row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_two_concurrent_deliverers_send_once(
    pool: AsyncConnectionPool[Any],
    event_log: EventLog,
    state: RobotState,
    base: str,
    client: httpx.AsyncClient,
) -> None:
    key = Key("expired", "d1", "c1", "webhook", "1")
    hooks = [webhook.Webhook(client, f"{base}/hook", "whsecret", allow_custom=True) for _ in range(2)]
    results = await asyncio.gather(*(deliver(event_log, key, h, MSG, NOW) for h in hooks))
    assert sorted(r.outcome for r in results) == ["sent", "skipped"]
    [got] = state.of("webhook")
    assert got.headers["x-certwatch-delivery"] == key.digest()
    assert (await _row(pool, key))[:2] == ("sent", 1)
    # A redelivered event, a restart: the key is taken, nothing goes twice.
    assert (await deliver(event_log, key, hooks[0], MSG, NOW + timedelta(hours=1))).outcome == "skipped"
    assert len(state.of("webhook")) == 1


async def test_permanent_failure_is_recorded_and_blocks_nothing(
    pool: AsyncConnectionPool[Any],
    event_log: EventLog,
    state: RobotState,
    base: str,
    client: httpx.AsyncClient,
) -> None:
    wrong = dingtalk.DingTalk(client, f"{base}/robot/send?access_token=tok", "wrong", allow_custom=True)
    right = dingtalk.DingTalk(client, f"{base}/robot/send?access_token=tok", "SECding", allow_custom=True)
    bad, good = Key("expired", "d1", "c1", "dingtalk", "1"), Key("expired", "d2", "c1", "dingtalk", "1")
    failed = await deliver(event_log, bad, wrong, MSG, NOW)
    assert failed.outcome == "failed" and failed.detail == "310000: sign not match"
    assert await _row(pool, bad) == ("failed", 1, "310000: sign not match", None)
    assert (await deliver(event_log, good, right, MSG, NOW)).outcome == "sent"
    assert (
        await deliver(event_log, bad, right, MSG, NOW + timedelta(days=1))
    ).outcome == "skipped"  # failed is final
    assert len(state.of("dingtalk")) == 1


async def test_retryable_waits_its_backoff_then_sends(
    pool: AsyncConnectionPool[Any],
    event_log: EventLog,
    state: RobotState,
    base: str,
    client: httpx.AsyncClient,
) -> None:
    key = Key("expired", "d1", "c1", "webhook", "1")
    hook = webhook.Webhook(client, f"{base}/hook", "whsecret", allow_custom=True)
    state.webhook_status = 503
    first = await deliver(event_log, key, hook, MSG, NOW)
    assert first.outcome == "retrying" and first.next_attempt_at == NOW + timedelta(seconds=30)
    assert (await _row(pool, key))[:2] == ("retrying", 1)
    state.webhook_status = 200
    assert (
        await deliver(event_log, key, hook, MSG, NOW + timedelta(seconds=10))
    ).outcome == "skipped"  # not due
    again = await deliver(event_log, key, hook, MSG, NOW + timedelta(seconds=30))
    assert (again.outcome, again.attempts) == ("sent", 2)
    assert len(state.of("webhook")) == 1
    # A 429 waits as long as its Retry-After says, and spends no attempt (nothing was refused).
    limited = Key("expired", "d2", "c1", "webhook", "1")
    state.webhook_status, state.retry_after = 429, "120"
    waits = await deliver(event_log, limited, hook, MSG, NOW)
    assert (waits.outcome, waits.attempts, waits.next_attempt_at) == (
        "retrying",
        0,
        NOW + timedelta(seconds=120),
    )
    state.webhook_status = 200
    assert (await deliver(event_log, limited, hook, MSG, NOW + timedelta(seconds=120))).attempts == 1


async def test_a_long_throttled_robot_waits_without_spending_attempts_until_a_deadline(
    pool: AsyncConnectionPool[Any], event_log: EventLog, state: RobotState, base: str, client: httpx.AsyncClient,
) -> None:  # fmt: skip
    state.per_minute = 1  # the fake robot's own limit: every message after the first gets 130101
    robot = dingtalk.DingTalk(client, f"{base}/robot/send?access_token=tok", "SECding", allow_custom=True)
    assert (
        await deliver(event_log, Key("expired", "d0", "c1", "dingtalk", "1"), robot, MSG, NOW)
    ).outcome == "sent"
    key, later = Key("expired", "d1", "c1", "dingtalk", "1"), Key("expired", "d2", "c1", "dingtalk", "1")
    at = NOW
    for _ in range(12):  # more rounds than the 8 attempts a failing vendor gets
        result = await deliver(event_log, key, robot, MSG, at)
        assert (result.outcome, result.detail) == (
            "retrying",
            "throttled, 130101: send too fast, exceed 20 times per minute",
        )
        assert result.next_attempt_at == at + timedelta(seconds=600)  # DingTalk throttles for 10 minutes
        at = result.next_attempt_at
    assert (await _row(pool, key))[:2] == ("retrying", 0)
    gave_up = await deliver(event_log, key, robot, MSG, NOW + timedelta(hours=23, minutes=55))
    assert gave_up.outcome == "failed" and gave_up.detail.startswith("gave up: throttled for over 24 hours")

    assert (await deliver(event_log, later, robot, MSG, NOW)).outcome == "retrying"
    state.per_minute = 20  # the throttle lifts: delivered on its first real attempt
    sent = await deliver(event_log, later, robot, MSG, NOW + timedelta(minutes=10))
    assert (sent.outcome, sent.attempts) == ("sent", 1)
    assert len(state.of("dingtalk")) == 2
