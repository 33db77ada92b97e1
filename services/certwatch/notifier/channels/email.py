"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, AUTH, a plain text + HTML alternative body.

A password is never sent over an unencrypted connection: `SmtpConfig` refuses `tls="none"` with a
user. SMTP's own reply codes decide the outcome: 4xx is worth a retry, 5xx is not.
"""

from __future__ import annotations

import ssl
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


class Email:
    name = "email"
    limits = Limits(max_body_bytes=10_000_000, per_minute=600, overflow=Overflow.TRUNCATE)

    def __init__(self, config: SmtpConfig, to: str) -> None:
        self._config = config
        self._to = to
        self._tls = ssl.create_default_context(cafile=config.ca_file) if config.tls != "none" else None

    async def send(self, message: Message) -> Delivery:
        c = self._config
        try:
            errors, _ = await aiosmtplib.send(
                compose(c, self._to, message),
                hostname=c.host,
                port=c.port,
                username=c.user,
                password=c.password,
                use_tls=c.tls == "implicit",
                start_tls=c.tls == "starttls",
                tls_context=self._tls,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _reply(exc.recipients[0].code, exc.recipients[0].message)
        except aiosmtplib.SMTPResponseException as exc:
            return _reply(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Retryable("network", f"{type(exc).__name__}: {exc}")
        if errors:
            code, text = next(iter(errors.values()))
            return _reply(code, text)
        return Delivered()


def _reply(code: int, text: str) -> Delivery:
    return Retryable(str(code), text) if 400 <= code < 500 else Failed(str(code), text)
