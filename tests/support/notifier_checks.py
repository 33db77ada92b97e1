"""What the notifier's end-to-end tests look at: mail and robot messages received, and when the
notifier has folded in a domain's latest verdict with nothing left to send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from email.message import EmailMessage

import psycopg
import pytest

from certwatch.cli.main import main
from tests.support.robot_servers import RobotState
from tests.support.smtp_server import Mailbox
from tests.support.stack import wait_for

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


def cli_for(ports: Mapping[str, int], api_key: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`certwatch ...` in a thread against the services on `ports`; (exit code, stdout, stderr)."""

    async def cli(*argv: str, service: str = "inventory") -> tuple[int, str, str]:
        server = f"127.0.0.1:{ports[service]}"
        code = await asyncio.to_thread(main, [*argv, "--api-key", api_key, "--server", server])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return cli


def mails(mailbox: Mailbox, word: str) -> list[EmailMessage]:
    with mailbox.lock:
        return [m for m in mailbox.messages if word in str(m["Subject"])]


def robot_titles(robots: RobotState, word: str) -> list[str]:
    return [r.body["markdown"]["title"] for r in robots.of("dingtalk") if word in r.body["markdown"]["title"]]


async def settled(database_url: str, domain_id: str) -> bool:
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


async def _verdicts(database_url: str, domain_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM events WHERE stream_id = %s AND event_type = 'DomainClassified'",
            (f"status-{domain_id}",),
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def recheck(cli: Cli, database_url: str, domain_id: str) -> None:
    """Probe the domain now; return once its new verdict is classified and the notifier is done with it."""
    before = await _verdicts(database_url, domain_id)
    code, out, err = await cli("domains", "recheck", domain_id)
    assert code == 0, out + err

    async def classified_again() -> bool:
        return await _verdicts(database_url, domain_id) > before

    await wait_for(classified_again, timeout=30, every=0.2)
    await wait_for(lambda: settled(database_url, domain_id), timeout=30, every=0.2)


async def listed(items: list[object]) -> list[object] | None:
    """`items` if there are any (a `wait_for` check)."""
    return items or None
