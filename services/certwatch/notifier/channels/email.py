"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, AUTH, a plain text + HTML alternative body.

A password is never sent over an unencrypted connection: `SmtpConfig` refuses `tls="none"` with a
user. SMTP's own reply codes decide the outcome: 4xx is worth a retry, 5xx is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import aiosmtplib

from certwatch.notifier.channels.base import Delivered, Delivery, Failed, Limits, Message, Overflow, Retryable

TlsMode = Literal["starttls", "implicit", "none"]
TLS_MODES = ("starttls", "implicit", "none")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    tls: TlsMode = "starttls"
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"CERTWATCH_SMTP_TLS: must be one of {', '.join(TLS_MODES)}, got {self.tls!r}")
        if self.tls == "none" and self.user:
            raise ValueError(
                "CERTWATCH_SMTP_TLS: 'none' with CERTWATCH_SMTP_USER would send the password in clear"
            )

    def __repr__(self) -> str:  # the password never reaches logs
        return f"SmtpConfig(host={self.host!r}, port={self.port}, tls={self.tls!r}, user={self.user!r})"


def compose(config: SmtpConfig, to: str, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = config.sender
    mail["To"] = to
    mail["Subject"] = message.subject
    if message.delivery_id:
        mail["X-Certwatch-Delivery"] = message.delivery_id
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


class SmtpPool:
    """A few SMTP connections (STARTTLS/TLS and AUTH done once each) that a round of sends shares:
    the handshake, not the message, is most of a send's cost. Connections open on first use and
    `close()` ends them (the dispatcher closes after each round, before a server's idle timeout).
    A connection that failed is dropped, never reused; nothing is retried here, so a send that
    may have reached the server is never repeated on another connection."""

    def __init__(self, config: SmtpConfig, size: int = 4) -> None:
        self._config = config
        self._tls = _tls_context(config)
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(None)  # a slot without a connection yet
        self._open: set[aiosmtplib.SMTP] = set()

    @property
    def config(self) -> SmtpConfig:
        return self._config

    async def send(self, mail: EmailMessage) -> Delivery:
        smtp = await self._idle.get()
        ok = False
        try:
            if smtp is None or not smtp.is_connected:
                smtp = _client(self._config, self._tls)
                await smtp.connect()
                self._open.add(smtp)
            outcome = await _attempt(smtp.send_message(mail))
            ok = isinstance(outcome, Delivered)
            return outcome
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _failure(exc)
        finally:
            if not ok and smtp is not None:
                self._open.discard(smtp)
                smtp.close()
                smtp = None
            self._idle.put_nowait(smtp)

    async def close(self) -> None:
        """End every idle connection politely (QUIT); the pool stays usable and reconnects."""
        for smtp in list(self._open):
            self._open.discard(smtp)
            try:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):  # the server went first
                    await smtp.quit()
            finally:
                smtp.close()  # also when the round is cancelled mid-QUIT (a service stopping)


class Email:
    name = "email"
    limits = Limits(max_body_bytes=10_000_000, per_minute=600, overflow=Overflow.TRUNCATE)

    def __init__(self, config: SmtpConfig, to: str, pool: SmtpPool | None = None) -> None:
        self._config = config
        self._to = to
        self._pool = pool
        self._tls = _tls_context(config)

    async def send(self, message: Message) -> Delivery:
        mail = compose(self._config, self._to, message)
        if self._pool is not None:
            return await self._pool.send(mail)
        smtp = _client(self._config, self._tls)
        try:
            async with smtp:
                return await _attempt(smtp.send_message(mail))
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _failure(exc)


def _tls_context(config: SmtpConfig) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=config.ca_file) if config.tls != "none" else None


def _client(c: SmtpConfig, tls: ssl.SSLContext | None) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(hostname=c.host, port=c.port, username=c.user, password=c.password,
                           use_tls=c.tls == "implicit", start_tls=c.tls == "starttls", tls_context=tls,
                           timeout=c.timeout)  # fmt: skip


async def _attempt(sending: Awaitable[tuple[dict[str, aiosmtplib.SMTPResponse], str]]) -> Delivery:
    """SMTP's reply decides: a refused recipient or command is the server's answer, not a network fault."""
    try:
        errors, _ = await sending
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return _reply(exc.recipients[0].code, exc.recipients[0].message)
    except aiosmtplib.SMTPResponseException as exc:
        return _reply(exc.code, exc.message)
    if errors:
        code, text = next(iter(errors.values()))
        return _reply(code, text)
    return Delivered()


def _failure(exc: Exception) -> Delivery:
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # refused at connect, STARTTLS or AUTH
        return _reply(exc.code, exc.message)
    return Retryable("network", f"{type(exc).__name__}: {exc}")


def _reply(code: int, text: str) -> Delivery:
    return Retryable(str(code), text) if 400 <= code < 500 else Failed(str(code), text)
