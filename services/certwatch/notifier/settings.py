"""The notifier's channel settings from the process settings (`CERTWATCH_SMTP_*`, `CERTWATCH_SMS_*`)."""

from __future__ import annotations

from typing import cast

from certwatch.notifier.channels.email import TLS_MODES, SmtpConfig, TlsMode
from certwatch.platform.config import ConfigError, Settings

SMS_DRIVERS = ("twilio", "aliyun")


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """The SMTP server alerts go through, or None when none is configured."""
    if not settings.smtp_host:
        return None
    if settings.smtp_tls not in TLS_MODES:
        raise ConfigError(
            f"CERTWATCH_SMTP_TLS: must be one of {', '.join(TLS_MODES)}, got {settings.smtp_tls!r}"
        )
    try:
        return SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
            tls=cast(TlsMode, settings.smtp_tls), user=settings.smtp_user, password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def check(settings: Settings) -> None:
    """Refuse bad channel settings when the service starts, not at the first alert."""
    smtp_config(settings)
    if settings.sms_driver and settings.sms_driver not in SMS_DRIVERS:
        raise ConfigError(
            f"CERTWATCH_SMS_DRIVER: must be one of {', '.join(SMS_DRIVERS)}, got {settings.sms_driver!r}"
        )
    if settings.sms_driver == "aliyun" and not settings.sms_template:
        raise ConfigError(
            "CERTWATCH_SMS_TEMPLATE: the aliyun driver needs the TemplateCode of a ${content} template"
        )
