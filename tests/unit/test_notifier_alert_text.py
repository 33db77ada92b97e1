"""The words of an alert: domain and port, the cause in words, the certificate, days left, the action."""

from __future__ import annotations

from datetime import UTC, datetime

from certwatch.notifier.alert_text import Served, render
from certwatch.notifier.channels.sms import check_text
from certwatch.notifier.rules import Event
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Finding, Verdict

AT = datetime(2026, 6, 1, tzinfo=UTC)
SERVED = (
    Served("192.0.2.7", "CN=shop.example.test", "CN=Test CA, O=Test", datetime(2026, 5, 29, 12, tzinfo=UTC)),
)


def _verdict(
    cause: Cause, days_left: int | None, detail: str = "192.0.2.7: the certificate expired"
) -> Verdict:
    return Verdict(host="shop.example.test", port=8443, checked_at=AT, status=Status.ABNORMAL, primary_cause=cause,
                   causes=(cause,), findings=(Finding(cause, detail, ip="192.0.2.7"),), days_left=days_left)  # fmt: skip


def test_an_expiry_alert_says_everything_needed_to_act() -> None:
    message = render(Event.EXPIRED, "shop.example.test", 8443, _verdict(Cause.EXPIRED, -3), served=SERVED)
    assert message.subject == "certwatch: shop.example.test:8443 Certificate has expired"
    assert message.text.splitlines() == [
        "shop.example.test:8443: Certificate has expired.",
        "Cause: Certificate has expired. The certificate that is used by the domain name has expired.",
        "- 192.0.2.7: the certificate expired",
        "Certificate served by 192.0.2.7: subject CN=shop.example.test, issuer CN=Test CA, O=Test,"
        " expires 2026-05-29 12:00 UTC",
        "Days left: none, expired 3 days ago.",
        "Recommended action: Purchase and configure a new SSL certificate for the domain name.",
    ]
    assert message.html is not None and "<p>Days left: none, expired 3 days ago.</p>" in message.html
    assert message.data is not None and message.data["cause"] == "EXPIRED" and message.data["days_left"] == -3
    assert message.sms == "certwatch: 1 certificate has expired. Details by email and in the console."
    assert message.sms is not None and check_text(message.sms) is None  # no domain name by SMS


def test_the_classifiers_precise_action_wins_for_the_primary_cause() -> None:
    precise = "Serve the intermediate certificate CN=Test CA that issued CN=shop.example.test."
    verdict = _verdict(Cause.CHAIN_VALIDATION_FAILED, 60, "192.0.2.7: the chain is incomplete")
    message = render(Event.CHAIN_FAILED, "shop.example.test", 8443, verdict, recommended_action=precise)
    assert f"Recommended action: {precise}" in message.text
    assert "Days left: 60." in message.text


def test_expiring_recovered_changed_and_quota_alerts() -> None:
    soon = render(Event.ABOUT_TO_EXPIRE, "a.test", 443, _verdict(Cause.ABOUT_TO_EXPIRE, 1))
    assert soon.subject == "certwatch: a.test:443 the certificate expires in 1 day"
    assert soon.sms is not None and soon.sms.startswith("certwatch: 1 certificate expires within 1 ")
    back = render(Event.RECOVERED, "a.test", 443, _verdict(Cause.ABOUT_TO_EXPIRE, 89), served=SERVED)
    assert back.subject.endswith("recovered: the certificate is valid again (SECURE)")
    assert "Recommended action" not in back.text
    changed = render(Event.CERTIFICATE_CHANGED, "a.test", 443, None, changes=("PUBLIC_KEY", "ISSUER"))
    assert "What changed: public key, issuer." in changed.text and changed.sms is None
    ending = render(Event.SERVICE_ENDING, "a.test", 443, None, service_ends_on=AT.date())
    assert "Monitoring of this domain ends on 2026-06-01." in ending.text
