"""Alerts through the whole stack: a served certificate breaks and recovers; each alert arrives once by
real SMTP (aiosmtpd, STARTTLS and AUTH) and by the DingTalk fake, through a notifier restart, a
replay of its log and two notifier replicas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import psycopg
import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from certwatch.platform.service import Service
from certwatch.services import MIGRATIONS, build_for
from tests.support.pki import TestPKI
from tests.support.robot_servers import RobotState, robot_server
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tls_server import server_context, tls_server

HOST = "alerts.test"
TOKEN = "alertsrobottoken0123"
SECRET = "SECalertsrobotsecret"

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def robots() -> RobotState:
    return RobotState(dingtalk={TOKEN: SECRET})


@pytest.fixture
def robot_url(robots: RobotState) -> Iterator[str]:
    with robot_server(robots) as url:
        yield url


def _cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Cli:
    async def cli(*argv: str, service: str = "inventory") -> tuple[int, str, str]:
        server = f"127.0.0.1:{stack.services[service].port}"
        code = await asyncio.to_thread(main, [*argv, "--api-key", stack.api_key, "--server", server])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return cli


def _mails(mailbox: Mailbox, word: str) -> list[EmailMessage]:
    with mailbox.lock:
        return [m for m in mailbox.messages if word in str(m["Subject"])]


def _robot(robots: RobotState, word: str) -> list[str]:
    return [r.body["markdown"]["title"] for r in robots.of("dingtalk") if word in r.body["markdown"]["title"]]


async def _settled(database_url: str, domain_id: str) -> bool:
    """The notifier folded in the domain's latest verdict and has nothing queued or in flight."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT (SELECT max((data->'verdict'->>'checked_at')::timestamptz) FROM events"
            "        WHERE stream_id = %s AND event_type = 'DomainClassified')"
            "   <= (SELECT checked_at FROM notifier_domains WHERE domain_id = %s),"
            " (SELECT count(*) FROM notifier_deliveries WHERE state IN ('queued', 'pending'))",
            (f"status-{domain_id}", domain_id),
        )
        row = await cur.fetchone()
    return bool(row and row[0] and row[1] == 0)


async def _recheck(cli: Cli, database_url: str, domain_id: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM events WHERE stream_id = %s AND event_type = 'DomainClassified'",
            (f"status-{domain_id}",),
        )
        before = (await cur.fetchone() or (0,))[0]
    code, out, err = await cli("domains", "recheck", domain_id)
    assert code == 0, out + err

    async def classified_again() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM events WHERE stream_id = %s AND event_type = 'DomainClassified'",
                (f"status-{domain_id}",),
            )
            return bool((await cur.fetchone() or (0,))[0] > before)

    await wait_for(classified_again, timeout=30, every=0.2)
    await wait_for(lambda: _settled(database_url, domain_id), timeout=30, every=0.2)


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
            cli = _cli(stack, capsys)
            code, out, err = await cli(
                "contacts", "add", "--name", "Ops", "--email", "ops@example.test", "--json",
                "--dingtalk-webhook", f"{robot_url}/robot/send?access_token={TOKEN}", "--dingtalk-secret", SECRET,
            )  # fmt: skip
            assert code == 0, out + err
            contact_id = json.loads(out)["id"]
            code, out, err = await cli("domains", "add", f"{HOST}:{port}", "--enable", "--contact", contact_id,
                                       "--json")  # fmt: skip
            assert code == 0, out + err

            async def secure() -> str | None:
                _, out, _ = await cli("domains", "list", "--json")
                domains = json.loads(out)
                return domains[0]["id"] if domains and domains[0]["status"] == "SECURE" else None

            domain_id = await wait_for(secure, timeout=30, every=0.3)
            await wait_for(lambda: _settled(stack_settings.database_url, domain_id), timeout=30)
            assert mailbox.messages == [] and robots.of("dingtalk") == []  # SECURE from the start: nothing

            replica = await _second_notifier(stack)  # from here on two notifiers compete
            try:
                context.load_cert_chain(*expired)  # new handshakes get the expired certificate
                await _recheck(cli, stack_settings.database_url, domain_id)
                [mail] = await wait_for(lambda: _wait_list(_mails(mailbox, "expired")), timeout=20)
                body = mail.get_body(("plain",))
                assert body is not None
                text = body.get_content()
                assert f"{HOST}:{port}" in str(mail["Subject"]) and mail["To"] == "ops@example.test"
                assert "Cause: Certificate has expired" in text and "Recommended action: Purchase" in text
                assert "Certificate served by 127.0.0.1: subject" in text and "expires" in text
                assert "expired 2 days ago" in text or "expired 3 days ago" in text
                assert mail.get_body(("html",)) is not None  # multipart: plain + HTML
                assert len(_robot(robots, "expired")) == 1

                # The same verdict again: no new alert.
                await _recheck(cli, stack_settings.database_url, domain_id)

                context.load_cert_chain(*good)
                await _recheck(cli, stack_settings.database_url, domain_id)
                await wait_for(lambda: _wait_list(_mails(mailbox, "recovered")), timeout=20)
                await wait_for(lambda: _wait_list(_robot(robots, "recovered")), timeout=20)
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
            await _recheck(cli, stack_settings.database_url, domain_id)
            assert [len(_mails(mailbox, w)) for w in ("expired", "recovered")] == [1, 1]
            assert [len(_robot(robots, w)) for w in ("expired", "recovered")] == [1, 1]
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


async def _wait_list(items: list[object]) -> list[object] | None:
    return items or None
