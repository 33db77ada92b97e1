"""A `certwatch serve notifier` process SIGKILLed while its webhook request is in flight (the receiver
holds it): the restarted notifier never sends that alert again; once the dead sender's lease has
run out it records the alert failed (outcome unknown), and sends the next one normally."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.contracts import notifications as nc
from certwatch.notifier.delivery import INTERRUPTED
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.localstack import free_port
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from certwatch.services import PORTS
from tests.support.process_stack import spawn, wait_serving
from tests.support.robot_servers import RobotState
from tests.support.stack import wait_for
from tests.support.verdicts import classified

WEBHOOK_SECRET = "whsecret-killed-mid-send"


async def _states(event_log: EventLog, domain_id: str) -> list[tuple[str, str]]:
    async with event_log.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event, state FROM notifier_deliveries WHERE domain_id = %s ORDER BY created_at",
            (domain_id,),
        )
        return [tuple(r) for r in await cur.fetchall()]


async def test_a_notifier_killed_mid_send_never_sends_that_alert_twice(
    settings: Settings, event_log: EventLog, robots: RobotState, robot_url: str, tmp_path: Path
) -> None:
    master = new_master_key()
    notifier_settings = replace(settings, allow_custom_webhooks=True, master_key=master)
    vault = Vault(parse_master_key(master))
    robots.webhook_secret = WEBHOOK_SECRET
    account_id, domain_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    async with event_log.pool.connection() as conn:
        sealed = await vault.seal(conn, cc.sealed_subject(contact_id), {
            "name": "ops", "webhook_url": f"{robot_url}/hook", "webhook_secret": WEBHOOK_SECRET})  # fmt: skip
    created = cc.ContactCreated(contact_id=contact_id, account_id=account_id, sealed=sealed, has_secret=True)
    added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host="killed.example.test", port=443,
                           contact_ids=(contact_id,), added_at=datetime.now(UTC))  # fmt: skip
    await event_log.append_batch([(cc.stream_id(contact_id), [created.new_event()], 0),
                                  (dc.stream_id(domain_id), [added.new_event()], 0)])  # fmt: skip

    ports = {name: free_port() for name in PORTS}
    robots.hold = threading.Event()
    first = spawn("notifier", notifier_settings, ports, tmp_path / "notifier-1.log")
    second = None
    try:
        wait_serving(ports["notifier"], first, tmp_path / "notifier-1.log")
        expired = classified(domain_id, account_id, "ABNORMAL", cause="EXPIRED", checked_at=datetime.now(UTC))
        await event_log.append(f"status-{domain_id}", [expired], expected_version=None)

        async def in_flight() -> bool:
            return robots.arrived == 1

        await wait_for(in_flight, timeout=20)  # the request reached the receiver, which holds its answer
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        robots.hold.set()
        assert await _states(event_log, domain_id) == [("expired", "pending")]

        second = spawn("notifier", notifier_settings, ports, tmp_path / "notifier-2.log")
        wait_serving(ports["notifier"], second, tmp_path / "notifier-2.log")
        # The dead sender's lease runs out (five minutes, here moved to the past): recorded failed, not resent.
        async with event_log.pool.connection() as conn:
            await conn.execute(
                "UPDATE notifier_deliveries SET lease_until = now() - interval '1 second' WHERE domain_id = %s",
                (domain_id,),
            )

        async def failed() -> bool:
            return await _states(event_log, domain_id) == [("expired", "failed")]

        await wait_for(failed, timeout=20)
        recovered = classified(domain_id, account_id, "SECURE", checked_at=datetime.now(UTC))
        await event_log.append(f"status-{domain_id}", [recovered], expected_version=None)

        async def sent() -> bool:
            return await _states(event_log, domain_id) == [("expired", "failed"), ("recovered", "sent")]

        await wait_for(sent, timeout=20)
        # Each alert reached the receiver once (the killed one too: its answer went nowhere). The
        # daily digest of the still-open incident may be among the requests, as it should.
        alerts = [r.body["data"]["event"] for r in robots.of("webhook") if "event" in r.body["data"]]
        assert sorted(alerts) == ["expired", "recovered"], alerts
        outcomes = [(e.type, e.data["event"], e.data["detail"]) for e in await event_log.read_all((0, 0))
                    if e.type in nc.NOTIFICATION_EVENTS and e.data["domain_id"] == domain_id]  # fmt: skip
        assert outcomes == [
            (nc.NOTIFICATION_FAILED, "expired", INTERRUPTED),
            (nc.NOTIFICATION_SENT, "recovered", ""),
        ]
    finally:
        robots.hold.set()
        for proc in (first, second):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
