"""The daily digest at scale: 10,000 abnormal domains over 1,000 contacts, built, queued and mailed.

Run alone: `.venv/bin/python -m bench.notifier_digest` (from the repo root; imports tests.support).

Setup (not timed as the target): an account, 1,000 contacts with an email each (sealed, as the
inventory appends them), 10,000 domains with one contact each and an abnormal verdict (expired,
mismatch, chain, about to expire in turn), folded in by the real incident projection; its clock
is a day ahead, so the verdicts are old news and queue no immediate alert.

Measured:
- build and queue every digest (`digests.queue_digest`: read the affected domains, group by
  contact, open 1,000 sealed contacts, compose, insert 1,000 deliveries in one transaction);
  target under 10 s. Reference: the same 1,000 rendered messages inserted bare (`executemany`).
- emails delivered per second by the dispatcher (claims under a lease, aiosmtplib with STARTTLS
  and AUTH over a round's shared connections, `SmtpPool`: 4, 50 mails a round, outcome recorded
  and `NotificationSent` appended) to aiosmtpd on loopback. Reference: a bare `smtplib` loop
  sending messages of the same size to the same server, one connection per message with
  STARTTLS and AUTH; and (diag) the same loop over one connection, the ceiling of a sender.
"""

from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from bench._common import Row, bounded, cli, fresh_servers, save
from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.notifier import digests, incidents
from certwatch.notifier.channels.base import http_client
from certwatch.notifier.channels.email import SmtpConfig, compose
from certwatch.notifier.dispatcher import Dispatcher
from certwatch.platform import db
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import catch_up
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from certwatch.services import MIGRATIONS

BENCH = "notifier_digest"
DOMAINS = 10_000
CONTACTS = 1_000
CAUSES = ("EXPIRED", "CERTIFICATE_MISMATCH", "CHAIN_VALIDATION_FAILED", "ABOUT_TO_EXPIRE")
TARGET_S = 10.0
REFERENCE_MAILS = 300
TIMEOUT_S = 600.0


async def _populate(event_log: EventLog, vault: Vault, account_id: str) -> list[str]:
    from tests.support.verdicts import classified

    contact_ids = [str(uuid.uuid4()) for _ in range(CONTACTS)]
    async with event_log.pool.connection() as conn:
        sealed = [await vault.seal(conn, cc.sealed_subject(c), {"name": f"c{n}", "email": f"c{n}@bench.test"})
                  for n, c in enumerate(contact_ids)]  # fmt: skip
    batch = [(cc.stream_id(c), [cc.ContactCreated(contact_id=c, account_id=account_id, sealed=s,
                                                  has_secret=False).new_event()], 0)
             for c, s in zip(contact_ids, sealed, strict=True)]  # fmt: skip
    for i in range(0, len(batch), 500):
        await event_log.append_batch(batch[i : i + 500])
    now = datetime.now(UTC)
    for start in range(0, DOMAINS, 500):
        appends = []
        for n in range(start, start + 500):
            domain_id = str(uuid.uuid4())
            host = f"d{n}.bench.test"
            added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host=host, port=443,
                                   contact_ids=(contact_ids[n % CONTACTS],), added_at=now)  # fmt: skip
            verdict = classified(domain_id, account_id, "ABNORMAL", cause=CAUSES[n % len(CAUSES)], checked_at=now,
                                 host=host)  # fmt: skip
            appends += [
                (dc.stream_id(domain_id), [added.new_event()], 0),
                (f"status-{domain_id}", [verdict], 0),
            ]
        await event_log.append_batch(appends)
    return contact_ids


async def _bare_insert(event_log: EventLog, messages: list[dict[str, Any]], now: datetime) -> float:
    started = time.perf_counter()
    async with event_log.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO notifier_deliveries (key, event, domain_id, contact_id, channel, incident, account_id,"
            " state, attempts, next_attempt_at, message, created_at, updated_at)"
            " VALUES (%s, 'bare', '*', %s, 'email', 'bare', NULL, 'sent', 0, %s, %s, %s, %s)",
            [(uuid.uuid4().hex, str(n), now, Jsonb(m), now, now) for n, m in enumerate(messages)],
        )
    return time.perf_counter() - started


async def _sent(event_log: EventLog) -> int:
    async with event_log.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM notifier_deliveries WHERE event = 'digest' AND state = 'sent'"
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def _smtplib_loop(port: int, config: SmtpConfig, messages: list[Any], ca_file: str) -> float:
    context = ssl.create_default_context(cafile=ca_file)
    started = time.perf_counter()
    for mail in messages:
        with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
            smtp.starttls(context=context)
            smtp.login(config.user or "", config.password or "")
            smtp.send_message(mail)
    return time.perf_counter() - started


def _smtplib_one_connection(port: int, config: SmtpConfig, messages: list[Any], ca_file: str) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=ca_file))
        smtp.login(config.user or "", config.password or "")
        for mail in messages:
            smtp.send_message(mail)
    return time.perf_counter() - started


async def run() -> list[Row]:
    from tests.support.pki import TestPKI
    from tests.support.smtp_server import Mailbox, smtp_server

    mailbox = Mailbox()
    with fresh_servers(BENCH) as (pg, _), TestPKI() as pki, smtp_server(mailbox, pki) as smtp_port:
        settings = Settings(database_url=pg.url, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_user=mailbox.user,
                            smtp_password=mailbox.password, smtp_ca_file=pki.ca_file)  # fmt: skip
        pool = await db.open_pool(pg.url, max_size=20, migrate=MIGRATIONS)
        try:
            event_log = EventLog(pool)
            vault = Vault(parse_master_key(new_master_key()))
            account_id = str(uuid.uuid4())
            async with bounded(TIMEOUT_S, "setup"):
                await _populate(event_log, vault, account_id)
                ahead = datetime.now(UTC) + timedelta(days=1)  # old news: no immediate alerts
                started = time.perf_counter()
                folded = await catch_up(
                    event_log, incidents.projection(event_log, settings, vault, clock=lambda: ahead)
                )
                fold_s = time.perf_counter() - started
            now = datetime.now(UTC)
            async with bounded(TIMEOUT_S, "digest"), pool.connection() as conn:
                started = time.perf_counter()
                async with conn.transaction():
                    contacts, queued = await digests.queue_digest(conn, vault, settings, account_id, now)
                digest_s = time.perf_counter() - started
                cur = await conn.execute("SELECT message FROM notifier_deliveries WHERE event = 'digest'")
                messages = [r[0] for r in await cur.fetchall()]
            assert (contacts, queued, len(messages)) == (CONTACTS, CONTACTS, CONTACTS), (contacts, queued)
            assert all(m["text"].count(".bench.test:443") == DOMAINS // CONTACTS for m in messages)
            bare_s = await _bare_insert(event_log, messages, now)

            dispatcher = Dispatcher(event_log, settings, vault)
            started = time.perf_counter()
            async with bounded(TIMEOUT_S, "mailing"), http_client() as client:
                for _ in range(CONTACTS):  # bounded: each round sends up to 50
                    if not await dispatcher.run_once(client):
                        break
            mail_s = time.perf_counter() - started
            sent = await _sent(event_log)
            assert sent == CONTACTS and len(mailbox.messages) == CONTACTS, (sent, len(mailbox.messages))

            config = SmtpConfig("127.0.0.1", smtp_port, "certwatch@bench.test", user=mailbox.user,
                                password=mailbox.password)  # fmt: skip
            from certwatch.notifier.channels.base import Message

            bare_mails = [
                compose(config, f"c{n}@bench.test", Message(**m))
                for n, m in enumerate(messages[:REFERENCE_MAILS])
            ]
            smtplib_s = _smtplib_loop(smtp_port, config, bare_mails, pki.ca_file)
            reused_s = _smtplib_one_connection(smtp_port, config, bare_mails, pki.ca_file)
        finally:
            await pool.close()
    note = f"{DOMAINS:,} domains, {CONTACTS:,} contacts, 1 email channel each"
    rows = [
        Row(BENCH, "build + queue every digest (1 per contact)", digest_s, "s",
            f"bare executemany INSERT of the same {CONTACTS:,} messages", bare_s, "max", TARGET_S, note),
        Row(BENCH, "digest emails delivered by the dispatcher (aiosmtplib, STARTTLS+AUTH)", sent / mail_s,
            "mails/s", "bare smtplib loop, STARTTLS+AUTH, same server and size", REFERENCE_MAILS / smtplib_s,
            note=f"{sent:,} mails, 50 a round over 4 connections; reference {REFERENCE_MAILS} mails one at a time"),
        Row(BENCH, "(diag) bare smtplib loop over one connection (STARTTLS+AUTH once)", REFERENCE_MAILS / reused_s,
            "mails/s", note=f"{REFERENCE_MAILS} mails: a single sender's ceiling, no bookkeeping"),
        Row(BENCH, "(diag) incident projection folding the verdicts", folded / fold_s, "events/s",
            note=f"{folded:,} events (contacts, domains, verdicts)"),
    ]  # fmt: skip
    save(BENCH, rows, {"domains": DOMAINS, "contacts": CONTACTS, "digest_s": digest_s, "bare_insert_s": bare_s,
                       "mail_s": mail_s, "smtplib_s": smtplib_s, "smtplib_one_connection_s": reused_s,
                       "fold_s": fold_s})  # fmt: skip
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
