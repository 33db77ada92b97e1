"""The notifier's channel settings: CERTWATCH_SMTP_* and CERTWATCH_SMS_* read, checked and kept secret."""

from __future__ import annotations

import pytest

from certwatch.notifier import settings as ns
from certwatch.platform.config import ConfigError, load


def test_smtp_settings_are_read_and_the_password_stays_out_of_repr() -> None:
    s = load({
        "CERTWATCH_SMTP_HOST": "mail.example.test", "CERTWATCH_SMTP_PORT": "465", "CERTWATCH_SMTP_TLS": "implicit",
        "CERTWATCH_SMTP_USER": "alerts", "CERTWATCH_SMTP_PASSWORD": "pw-123", "CERTWATCH_SMTP_CA_FILE": "/ca.pem",
        "CERTWATCH_SMTP_FROM": "certwatch@example.test",
    })  # fmt: skip
    config = ns.smtp_config(s)
    assert config is not None
    assert (config.host, config.port, config.tls, config.user, config.ca_file, config.sender) == (
        "mail.example.test", 465, "implicit", "alerts", "/ca.pem", "certwatch@example.test")  # fmt: skip
    assert config.password == "pw-123"
    assert "pw-123" not in repr(config) and "pw-123" not in repr(s)


def test_no_host_no_email_channel() -> None:
    assert ns.smtp_config(load({})) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CERTWATCH_SMTP_HOST": "m", "CERTWATCH_SMTP_TLS": "ssl"}, "CERTWATCH_SMTP_TLS: must be one of"),
        ({"CERTWATCH_SMTP_HOST": "m", "CERTWATCH_SMTP_TLS": "none", "CERTWATCH_SMTP_USER": "u"}, "in clear"),
        ({"CERTWATCH_SMTP_PORT": "smtp"}, "CERTWATCH_SMTP_PORT must be an integer"),
        ({"CERTWATCH_SMS_DRIVER": "carrier-pigeon"}, "CERTWATCH_SMS_DRIVER: must be one of twilio, aliyun"),
        ({"CERTWATCH_SMS_DRIVER": "aliyun"}, "CERTWATCH_SMS_TEMPLATE: the aliyun driver needs"),
    ],
)
def test_bad_channel_settings_are_refused_at_start_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ns.check(load(env))
