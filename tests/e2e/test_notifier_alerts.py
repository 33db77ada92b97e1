"""Alerts through the whole stack: a served certificate breaks and recovers; each alert arrives once by
real SMTP (aiosmtpd, STARTTLS and AUTH) and by the DingTalk fake, through a notifier restart, a
replay of its log and two notifier replicas."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from certwatch.platform.config import Settings
from certwatch.platform.localstack import free_port
from certwatch.platform.service import Service
from certwatch.services import MIGRATIONS, build_for
from tests.support.notifier_checks import Cli, cli_for, listed, mails, recheck, robot_titles, settled
from tests.support.pki import TestPKI
from tests.support.process_stack import process_stack, spawn, wait_serving
from tests.support.robot_servers import RobotState
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tls_server import server_context, tls_server

HOST = "alerts.test"
TOKEN = "alertsrobottoken0123"
SECRET = "SECalertsrobotsecret"


@pytest.fixture(autouse=True)
def robot(robots: RobotState) -> None:
    robots.dingtalk[TOKEN] = SECRET


async def _second_notifier(stack: Stack) -> Service:
    other = Service("notifier", stack.settings, build_for("notifier"), port=0, migrations=MIGRATIONS)
    await other.start()
    return other


async def test_breakage_and_recovery_alert_once_each_through_restart_replay_and_two_replicas(
    settings: Settings, pki: TestPKI, mailbox: Mailbox, robots: RobotState, robot_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    good = pki.server_files(pki.leaf(HOST, org="Alerts Org"))
    now = datetime.now(UTC)
    expired = pki.server_files(
        pki.leaf(HOST, not_before=now - timedelta(days=100), not_after=now - timedelta(days=2))
    )
    context = server_context(*good)
    with smtp_server(mailbox, pki) as smtp_port, tls_server(context) as port:
        stack_settings = replace(
            settings, resolve_overrides=(f"{HOST}:{port}:127.0.0.1",), allow_custom_webhooks=True,
            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="starttls", smtp_user=mailbox.user,
            smtp_password=mailbox.password, smtp_ca_file=pki.ca_file, smtp_from="certwatch@alerts.test",
        )  # fmt: skip
        async with running_stack(stack_settings) as stack:
            cli = cli_for({n: s.port for n, s in stack.services.items()}, stack.api_key, capsys)
            domain_id = await _monitor(cli, robot_url, port)
            await wait_for(lambda: settled(stack_settings.database_url, domain_id), timeout=30)
            assert mailbox.messages == [] and robots.of("dingtalk") == []  # SECURE from the start: nothing

            replica = await _second_notifier(stack)  # from here on two notifiers compete
            try:
                context.load_cert_chain(*expired)  # new handshakes get the expired certificate
                await recheck(cli, stack_settings.database_url, domain_id)
                [mail] = await wait_for(lambda: listed(mails(mailbox, "expired")), timeout=20)
                body = mail.get_body(("plain",))
                assert body is not None
                text = body.get_content()
                assert f"{HOST}:{port}" in str(mail["Subject"]) and mail["To"] == "ops@example.test"
                assert "Cause: Certificate has expired" in text and "Recommended action: Purchase" in text
                assert "Certificate served by 127.0.0.1: subject" in text and "expires" in text
                assert "expired 2 days ago" in text or "expired 3 days ago" in text
                assert mail.get_body(("html",)) is not None  # multipart: plain + HTML
                assert len(robot_titles(robots, "expired")) == 1

                # The same verdict again: no new alert.
                await recheck(cli, stack_settings.database_url, domain_id)

                context.load_cert_chain(*good)
                await recheck(cli, stack_settings.database_url, domain_id)
                await wait_for(lambda: listed(mails(mailbox, "recovered")), timeout=20)
                await wait_for(lambda: listed(robot_titles(robots, "recovered")), timeout=20)
            finally:
                await replica.stop()

            # A restart of the notifier, then a replay of its whole log (as a rebuild or a
            # redelivery would hand it every event again): nothing is sent twice.
            notifier = stack.services["notifier"]
            await notifier.stop()
            await notifier.start()
            async with await psycopg.AsyncConnection.connect(
                stack_settings.database_url, autocommit=True
            ) as conn:
                await conn.execute("UPDATE checkpoints SET position = 0, transaction_id = '0'"
                                   " WHERE name = 'notifier.incidents'")  # fmt: skip
                for sql in ("DELETE FROM notifier_domains", "DELETE FROM notifier_contacts"):
                    await conn.execute(sql.encode())
            await wait_for(lambda: settled(stack_settings.database_url, domain_id), timeout=30)
            assert [len(mails(mailbox, w)) for w in ("expired", "recovered")] == [1, 1]
            assert [len(robot_titles(robots, w)) for w in ("expired", "recovered")] == [1, 1]
            assert len(mailbox.messages) == 2 and len(robots.of("dingtalk")) == 2
            async with await psycopg.AsyncConnection.connect(
                stack_settings.database_url, autocommit=True
            ) as conn:
                cur = await conn.execute(
                    "SELECT event_type, data->>'event', data->>'channel' FROM events"
                    " WHERE event_type LIKE 'Notification%%' ORDER BY 2, 3"
                )
                recorded = [tuple(r) for r in await cur.fetchall()]
            assert recorded == [("NotificationSent", "expired", "dingtalk"), ("NotificationSent", "expired", "email"),
                                ("NotificationSent", "recovered", "dingtalk"),
                                ("NotificationSent", "recovered", "email")]  # fmt: skip


async def test_two_notifier_processes_one_killed_send_each_alert_once(
    settings: Settings, pki: TestPKI, mailbox: Mailbox, robots: RobotState, robot_url: str,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    good = pki.server_files(pki.leaf(HOST, org="Alerts Org"))
    mismatched = pki.server_files(pki.leaf("elsewhere.test"))
    context = server_context(*good)
    with smtp_server(mailbox, pki) as smtp_port, tls_server(context) as port:
        stack_settings = replace(
            settings, resolve_overrides=(f"{HOST}:{port}:127.0.0.1",), allow_custom_webhooks=True,
            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_user=mailbox.user, smtp_password=mailbox.password,
            smtp_ca_file=pki.ca_file,
        )  # fmt: skip
        async with process_stack(stack_settings) as stack:
            # A second `certwatch serve notifier` process beside the stack's.
            ports = {**stack.ports, "notifier": free_port()}
            second = spawn("notifier", stack.settings, ports, tmp_path / "notifier-2.log")
            try:
                wait_serving(ports["notifier"], second, tmp_path / "notifier-2.log")
                cli = cli_for(stack.ports, stack.api_key, capsys)
                domain_id = await _monitor(cli, robot_url, port)
                await wait_for(lambda: settled(stack_settings.database_url, domain_id), timeout=30)

                context.load_cert_chain(*mismatched)
                await recheck(cli, stack_settings.database_url, domain_id)
                await wait_for(lambda: listed(mails(mailbox, "mismatch")), timeout=20)
                await wait_for(lambda: listed(robot_titles(robots, "mismatch")), timeout=20)

                second.send_signal(signal.SIGKILL)  # no graceful stop: whatever it held stays leased
                second.wait(timeout=10)
                second = spawn("notifier", stack.settings, ports, tmp_path / "notifier-3.log")
                wait_serving(ports["notifier"], second, tmp_path / "notifier-3.log")

                context.load_cert_chain(*good)
                await recheck(cli, stack_settings.database_url, domain_id)
                await wait_for(lambda: listed(mails(mailbox, "recovered")), timeout=20)
                await wait_for(lambda: listed(robot_titles(robots, "recovered")), timeout=20)
                # After the account's digest hour a restarted notifier also sends today's digest of
                # the open incident: that is no repeat of an alert.
                alerts = [m for m in mailbox.messages if "daily digest" not in str(m["Subject"])]
                assert [str(m["Subject"]).split(" ", 2)[2] for m in alerts] == [
                    "Certificate mismatch", "recovered: the certificate is valid again (SECURE)"]  # fmt: skip
                assert (
                    len(
                        [
                            r
                            for r in robots.of("dingtalk")
                            if "daily digest" not in r.body["markdown"]["title"]
                        ]
                    )
                    == 2
                )
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(second.pid, signal.SIGKILL)
                second.wait(timeout=10)


async def _monitor(cli: Cli, robot_url: str, port: int) -> str:
    """A contact with email and DingTalk, and HOST:port monitored with it; the domain id once SECURE."""
    code, out, err = await cli(
        "contacts", "add", "--name", "Ops", "--email", "ops@example.test", "--json",
        "--dingtalk-webhook", f"{robot_url}/robot/send?access_token={TOKEN}", "--dingtalk-secret", SECRET,
    )  # fmt: skip
    assert code == 0, out + err
    contact_id = json.loads(out)["id"]
    code, out, err = await cli(
        "domains", "add", f"{HOST}:{port}", "--enable", "--contact", contact_id, "--json"
    )
    assert code == 0, out + err

    async def secure() -> str | None:
        _, out, _ = await cli("domains", "list", "--json")
        domains = json.loads(out)
        return domains[0]["id"] if domains and domains[0]["status"] == "SECURE" else None

    domain_id: str = await wait_for(secure, timeout=30, every=0.3)
    return domain_id
