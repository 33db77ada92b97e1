"""A real SMTP server (aiosmtpd) on loopback that requires STARTTLS and AUTH and keeps what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from certwatch.platform import localstack
from tests.support.pki import TestPKI


@dataclass
class Mailbox:
    user: str = "alerts"
    password: str = "s3cret-pw"
    reject_rcpt: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." reply
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    logins: int = 0  # successful AUTHs: one per connection a client opened

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            self.user,
            self.password,
        )
        if ok:
            with self.lock:
                self.logins += 1
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.reject_rcpt:
            return self.reject_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted"


class _ClosingController(Controller):
    """aiosmtpd's controller stops its loop with client connections still open (Python 3.11's
    `Server.close` leaves them), and their transports warn when collected; a client killed just
    before the stop leaves one. This one aborts every connection first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        smtp = SMTP(self.handler, **self.SMTP_kwargs)  # what the base factory makes
        self.sessions.append(smtp)
        return smtp

    def stop(self, no_assert: bool = False) -> None:
        closed = threading.Event()

        def abort_all() -> None:
            for smtp in self.sessions:
                if isinstance(smtp.transport, asyncio.Transport):
                    smtp.transport.abort()
            self.loop.call_soon(closed.set)  # after the aborts' scheduled connection_lost calls

        self.loop.call_soon_threadsafe(abort_all)
        if not closed.wait(10):
            raise AssertionError("the SMTP server's loop did not close its connections within 10 s")
        super().stop(no_assert)


@contextlib.contextmanager
def smtp_server(mailbox: Mailbox, pki: TestPKI) -> Iterator[int]:
    """Serve `mailbox` with STARTTLS and AUTH required, a certificate from `pki`; yields the port."""
    leaf = pki.leaf("localhost", dns=("localhost",), ips=("127.0.0.1",))
    certfile, keyfile = pki.server_files(leaf)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    port = localstack.free_port()
    controller = _ClosingController(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        auth_required=True,
        authenticator=mailbox.authenticate,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
