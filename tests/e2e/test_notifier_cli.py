"""`certwatch alerts ...` and `certwatch contacts test` against the inventory and notifier services:
the delivery log, test messages, rules, mute, acknowledge and the digest, scoped to the account."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from tests.support.pki import TestPKI
from tests.support.robot_servers import RobotState
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.stack import Stack, new_account, running_stack, wait_for
from tests.support.verdicts import classified

TOKEN = "clirobottoken0123456"
SECRET = "SECclirobotsecret"


@pytest.fixture(autouse=True)
def robot(robots: RobotState) -> None:
    robots.dingtalk[TOKEN] = SECRET


async def _append_verdict(stack: Stack, domain_id: str, cause: str) -> None:
    runtime = stack.services["notifier"].runtime
    assert runtime is not None
    event = classified(domain_id, stack.account_id, "ABNORMAL", cause=cause, checked_at=datetime.now(UTC),
                       host="cli-alerts.test")  # fmt: skip
    await runtime.event_log.append(f"status-{domain_id}", [event], expected_version=None)


async def test_alerts_cli_log_test_rules_mute_ack_digest(
    settings: Settings, pki: TestPKI, robots: RobotState, robot_url: str, mailbox: Mailbox,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with smtp_server(mailbox, pki) as smtp_port:
        stack_settings = replace(
            settings, allow_custom_webhooks=True, smtp_host="127.0.0.1", smtp_port=smtp_port,
            smtp_user=mailbox.user, smtp_password=mailbox.password, smtp_ca_file=pki.ca_file,
        )  # fmt: skip
        async with running_stack(stack_settings, ("inventory", "notifier")) as stack:

            async def cli(
                *argv: str, service: str = "notifier", key: str = stack.api_key
            ) -> tuple[int, str, str]:
                server = f"127.0.0.1:{stack.services[service].port}"
                code = await asyncio.to_thread(main, [*argv, "--api-key", key, "--server", server])
                captured = capsys.readouterr()
                return code, captured.out, captured.err

            code, out, err = await cli(
                "contacts", "add", "--name", "Ops", "--email", "ops@example.test", "--json",
                "--dingtalk-webhook", f"{robot_url}/robot/send?access_token={TOKEN}", "--dingtalk-secret", SECRET,
                service="inventory",
            )  # fmt: skip
            assert code == 0, out + err
            contact_id = json.loads(out)["id"]
            code, out, err = await cli("domains", "add", "cli-alerts.test:443", "--contact", contact_id, "--json",
                                       service="inventory")  # fmt: skip
            assert code == 0, out + err
            domain_id = json.loads(out)["results"][0]["domain"]["id"]

            # The button users reach for first: one message per channel, and what became of it.
            code, out, err = await cli("contacts", "test", contact_id, "--json")
            assert code == 0, out + err
            assert json.loads(out) == [
                {"channel": "email", "outcome": "delivered", "detail": ""},
                {"channel": "dingtalk", "outcome": "delivered", "detail": ""},
            ]
            assert [str(m["Subject"]) for m in mailbox.messages] == ["certwatch: test message"]
            robots.dingtalk[TOKEN] = "SECnolongerthesecret"  # the robot's secret was rotated
            code, out, _ = await cli("contacts", "test", contact_id, "--json")
            assert code == 1 and json.loads(out)[1] == {
                "channel": "dingtalk", "outcome": "failed", "detail": "310000: sign not match"}  # fmt: skip
            robots.dingtalk[TOKEN] = SECRET

            # An alert, then its delivery log in the JSON shape.
            await _append_verdict(stack, domain_id, "EXPIRED")

            async def delivered() -> list[dict[str, str]] | None:
                _, out, _ = await cli("alerts", "log", domain_id, "--json")
                rows: list[dict[str, str]] = json.loads(out)
                return rows if len(rows) == 2 and all(r["outcome"] == "delivered" for r in rows) else None

            rows = await wait_for(delivered, timeout=20, every=0.3)
            assert all(
                set(r) == {"time", "event", "contact_id", "channel", "outcome", "detail"} for r in rows
            )
            assert sorted((r["event"], r["channel"], r["contact_id"]) for r in rows) == [
                ("expired", "dingtalk", contact_id), ("expired", "email", contact_id)]  # fmt: skip
            code, out, _ = await cli("alerts", "log", "--contact", contact_id, "--json")
            by_contact = json.loads(out)  # two tests (the second failed over DingTalk) and the alert
            assert code == 0 and sorted(r["outcome"] for r in by_contact) == ["delivered"] * 5 + ["failed"]

            # Another account sees none of it.
            _, other_key = await new_account(stack_settings.database_url, "other")
            code, _, err = await cli("alerts", "log", domain_id, "--json", key=other_key)
            assert code != 0 and "not found" in err
            code, _, err = await cli("contacts", "test", contact_id, key=other_key)
            assert code != 0 and "not found" in err

            # Rules: refused with the field and the rule; set per domain over the account's.
            code, _, err = await cli("alerts", "rules", domain_id, "--network-failures", "7")
            assert code != 0 and "network_failures: must be from 1 to 5, got 7" in err
            code, out, err = await cli("alerts", "rules", domain_id, "--network-failures", "3", "--json")
            assert code == 0, err
            assert json.loads(out)["network_failures"] == 3
            code, out, _ = await cli("alerts", "rules", "--json")
            assert json.loads(out)["network_failures"] == 2 and json.loads(out)["digest_at"] == "09:00"
            code, _, err = await cli("alerts", "rules", "--time-zone", "Mars/Olympus")
            assert code != 0 and "time_zone" in err

            # Today's digest now: one message per contact channel; again: nothing twice.
            code, out, err = await cli("alerts", "digest", "--now", "--json")
            assert code == 0 and json.loads(out) == {"contacts": 1, "queued": 2}, err
            await wait_for(lambda: _has(mailbox, "daily digest"), timeout=20)
            [digest] = [m for m in mailbox.messages if "daily digest" in str(m["Subject"])]
            body = digest.get_body(("plain",))
            assert body is not None and "cli-alerts.test:443: Certificate has expired" in body.get_content()
            code, out, _ = await cli("alerts", "digest", "--now", "--json")
            assert json.loads(out) == {"contacts": 1, "queued": 0}

            # Acknowledge the open incident; mute the domain: a new condition pages no one.
            code, out, _ = await cli("alerts", "ack", domain_id, "--json")
            assert code == 0 and json.loads(out)["acknowledged_incident"] == 1
            until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
            code, out, _ = await cli("alerts", "mute", domain_id, "--until", until.isoformat(), "--json")
            assert code == 0 and json.loads(out)["muted_until"] == until.isoformat().replace("+00:00", "Z")
            await _append_verdict(stack, domain_id, "CERTIFICATE_MISMATCH")

            async def folded() -> bool:
                _, out, _ = await cli("alerts", "ack", domain_id, "--json")
                return "mismatch" in json.loads(out)["active"]

            await wait_for(folded, timeout=20, every=0.3)
            _, out, _ = await cli("alerts", "log", domain_id, "--json")
            assert all(r["event"] == "expired" for r in json.loads(out))


async def _has(mailbox: Mailbox, word: str) -> bool:
    with mailbox.lock:
        return any(word in str(m["Subject"]) for m in mailbox.messages)
