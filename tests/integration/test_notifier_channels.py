"""Each channel against a local server that checks what its vendor checks and answers with its codes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from certwatch.notifier.channels import dingtalk, lark, sms, webhook, wecom
from certwatch.notifier.channels.aliyun_sms import AliyunSms
from certwatch.notifier.channels.apprise_url import AppriseUrl
from certwatch.notifier.channels.base import Delivered, Failed, Message, Retryable, http_client
from certwatch.notifier.channels.email import Email, SmtpConfig, SmtpPool
from tests.support.pki import TestPKI
from tests.support.robot_servers import RobotState, robot_server
from tests.support.smtp_server import Mailbox, smtp_server

MSG = Message(subject="certwatch: www.example.test:443 expires in 7 days", text="Renew the certificate.\n")


@pytest.fixture
def state() -> RobotState:
    return RobotState(
        dingtalk={"tok": "SECdingsecret"},
        wecom={"wkey"},
        lark={"hook1": "larksecret"},
        twilio={"AC1": "authtoken"},
        webhook_secret="whsecret",
    )


@pytest.fixture
def base(state: RobotState) -> Iterator[str]:
    with robot_server(state) as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as c:
        yield c


async def test_dingtalk_signed_markdown_arrives(
    state: RobotState, base: str, client: httpx.AsyncClient
) -> None:
    robot = dingtalk.DingTalk(
        client, f"{base}/robot/send?access_token=tok", "SECdingsecret", allow_custom=True
    )
    assert await robot.send(MSG) == Delivered()
    [got] = state.of("dingtalk")
    assert got.body["markdown"] == {"title": MSG.subject, "text": MSG.text}


async def test_dingtalk_wrong_secret_is_a_permanent_failure_despite_http_200(
    base: str, client: httpx.AsyncClient
) -> None:
    robot = dingtalk.DingTalk(client, f"{base}/robot/send?access_token=tok", "wrong", allow_custom=True)
    assert await robot.send(MSG) == Failed("310000", "sign not match")


async def test_dingtalk_stale_clock_is_refused(base: str, client: httpx.AsyncClient) -> None:
    robot = dingtalk.DingTalk(
        client, f"{base}/robot/send?access_token=tok", "SECdingsecret", allow_custom=True,
        clock=lambda: time.time() - 7200,
    )  # fmt: skip
    outcome = await robot.send(MSG)
    assert isinstance(outcome, Failed) and outcome.code == "310000"


async def test_dingtalk_throttle_backs_off_and_long_digest_is_split(
    state: RobotState, base: str, client: httpx.AsyncClient
) -> None:
    url = f"{base}/robot/send?access_token=tok"
    one = dingtalk.DingTalk(client, url, "SECdingsecret", allow_custom=True)
    long = Message(
        subject="digest", text="".join(f"- domain{i}.example.test: expired\n" for i in range(1500))
    )
    assert await one.send(long) == Delivered()
    parts = state.of("dingtalk")
    assert len(parts) >= 3 and all(len(p.body["markdown"]["text"].encode()) < 20_000 for p in parts)
    assert "".join(p.body["markdown"]["text"] for p in parts) == long.text
    for _ in range(20 - len(parts)):
        assert await one.send(MSG) == Delivered()
    # The 21st in a minute waits locally, without reaching the robot...
    local = await one.send(MSG)
    assert isinstance(local, Retryable) and local.code == "rate" and 0 < local.retry_after <= 60
    # ...and a second replica that doesn't know gets the vendor's 130101: throttled for 10 minutes.
    other = dingtalk.DingTalk(client, url, "SECdingsecret", allow_custom=True)
    assert await other.send(MSG) == Retryable(
        "130101", "send too fast, exceed 20 times per minute", 600.0, throttled=True
    )
    assert len(state.of("dingtalk")) == 20


async def test_robot_urls_must_be_vendor_hosts_unless_custom_allowed(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match=r"dingtalk.webhook_url: must be an https URL on oapi.dingtalk.com"):
        dingtalk.DingTalk(client, "http://127.0.0.1:9/robot/send?access_token=t", "s")
    wecom.WeCom(client, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")


async def test_wecom_key_rate_limit_and_size(state: RobotState, base: str, client: httpx.AsyncClient) -> None:
    bad = wecom.WeCom(client, f"{base}/cgi-bin/webhook/send?key=nope", allow_custom=True)
    assert await bad.send(MSG) == Failed("93000", "invalid webhook url")
    good = wecom.WeCom(client, f"{base}/cgi-bin/webhook/send?key=wkey", allow_custom=True)
    big = Message(subject="digest", text="".join(f"- d{i}.example.test: chain failed\n" for i in range(400)))
    assert await good.send(big) == Delivered()
    assert all(len(r.body["markdown"]["content"].encode()) <= 4096 for r in state.of("wecom"))
    state.per_minute = len(state.of("wecom"))
    other = wecom.WeCom(client, f"{base}/cgi-bin/webhook/send?key=wkey", allow_custom=True)
    assert await other.send(MSG) == Retryable("45009", "api freq out of limit", 60.0, throttled=True)


async def test_lark_signature_key_and_message_order(
    state: RobotState, base: str, client: httpx.AsyncClient
) -> None:
    good = lark.Lark(client, f"{base}/open-apis/bot/v2/hook/hook1", "larksecret", allow_custom=True)
    assert await good.send(MSG) == Delivered()
    [got] = state.of("lark")
    assert got.body["content"] == {"text": MSG.text} and got.body["timestamp"].isdigit()
    wrong = lark.Lark(client, f"{base}/open-apis/bot/v2/hook/hook1", "other", allow_custom=True)
    outcome = await wrong.send(MSG)
    assert isinstance(outcome, Failed) and outcome.code == str(lark.BAD_SIGNATURE)


def test_lark_and_dingtalk_sign_differently() -> None:
    # The expected value is from `openssl dgst -sha256 -hmac "$(printf "1700000000\\ns")"` over an empty input.
    assert lark.sign("s", 1700000000) != dingtalk.sign("s", 1700000000)
    assert lark.sign("s", 1700000000) == "+z1fiKH1w9xoRwSUZju5W5ZBj/d5cwS4H+5mTClDOl4="


async def test_webhook_signed_with_timestamp(state: RobotState, base: str, client: httpx.AsyncClient) -> None:
    hook = webhook.Webhook(client, f"{base}/hook", "whsecret", allow_custom=True)
    msg = Message(subject="s", text="t", delivery_id="abc123", data={"domain": "www.example.test"})
    assert await hook.send(msg) == Delivered()
    [got] = state.of("webhook")
    assert got.headers["x-certwatch-delivery"] == "abc123"
    assert got.body == {
        "delivery_id": "abc123",
        "subject": "s",
        "text": "t",
        "data": {"domain": "www.example.test"},
    }
    wrong = webhook.Webhook(client, f"{base}/hook", "other", allow_custom=True)
    assert await wrong.send(msg) == Failed("http 401", '{"error": "bad signature"}')
    state.webhook_status = 503
    outcome = await hook.send(msg)
    assert isinstance(outcome, Retryable) and outcome.code == "http 503"


async def test_sms_fixed_template_no_domains(state: RobotState, base: str, client: httpx.AsyncClient) -> None:
    gw = sms.TwilioSms(client, base, "AC1", "authtoken", "+15550001", "+8613800000000", allow_custom=True)
    text = sms.template_text({"ABOUT_TO_EXPIRE": 3, "EXPIRED": 1}, days=7)
    assert text == (
        "certwatch: 3 certificates expire within 7 days; 1 certificate has expired. "
        "Details by email and in the console."
    )
    outcome = await gw.send(Message(subject="x", text="x", sms=text))
    assert isinstance(outcome, Delivered) and outcome.vendor_id.startswith("SM")
    [got] = state.of("sms")
    assert got.body == {"To": "+8613800000000", "From": "+15550001", "Body": text}
    leaky = await gw.send(Message(subject="x", text="x", sms="www.example.test expired"))
    assert isinstance(leaky, Failed) and "www.example.test" in leaky.message
    bad = sms.TwilioSms(client, base, "AC1", "wrong", "+15550001", "+861", allow_custom=True)
    assert await bad.send(Message(subject="x", text="x", sms=text)) == Failed("20003", "Authenticate")
    assert len(state.of("sms")) == 1


async def test_email_starttls_auth_multipart() -> None:
    mailbox = Mailbox()
    with TestPKI() as pki, smtp_server(mailbox, pki) as port:
        config = SmtpConfig(
            host="127.0.0.1", port=port, sender="certwatch@example.test", user="alerts",
            password="s3cret-pw", ca_file=pki.ca_file,
        )  # fmt: skip
        msg = Message(subject=MSG.subject, text="Plain body\n", html="<p>HTML body</p>", delivery_id="k1")
        assert await Email(config, "ops@example.test").send(msg) == Delivered()
        [got] = mailbox.messages
        assert got["Subject"] == MSG.subject and got["To"] == "ops@example.test"
        assert got["X-Certwatch-Delivery"] == "k1"
        plain, html = got.get_body(("plain",)), got.get_body(("html",))
        assert plain is not None and plain.get_content().strip() == "Plain body"
        assert html is not None and html.get_content().strip() == "<p>HTML body</p>"
        bad_pw = Email(SmtpConfig("127.0.0.1", port, "c@example.test", user="alerts", password="no",
                                  ca_file=pki.ca_file), "ops@example.test")  # fmt: skip
        outcome = await bad_pw.send(msg)
        assert isinstance(outcome, Failed) and outcome.code == "535"
        mailbox.reject_rcpt["full@example.test"] = "452 mailbox full"
        busy = await Email(config, "full@example.test").send(msg)
        assert isinstance(busy, Retryable) and busy.code == "452"
        assert len(mailbox.messages) == 1


async def test_email_pool_shares_connections_and_drops_a_failed_one() -> None:
    mailbox = Mailbox()
    with TestPKI() as pki, smtp_server(mailbox, pki) as port:
        config = SmtpConfig(host="127.0.0.1", port=port, sender="certwatch@example.test", user="alerts",
                            password="s3cret-pw", ca_file=pki.ca_file)  # fmt: skip
        pool = SmtpPool(config, size=2)
        sent = await asyncio.gather(
            *(Email(config, f"ops{n}@example.test", pool).send(MSG) for n in range(6))
        )
        assert sent == [Delivered()] * 6 and len(mailbox.messages) == 6
        assert mailbox.logins == 2  # six mails, two STARTTLS + AUTH handshakes
        mailbox.reject_rcpt["full@example.test"] = "452 mailbox full"
        busy = await Email(config, "full@example.test", pool).send(MSG)
        assert isinstance(busy, Retryable) and busy.code == "452"
        assert await Email(config, "ops@example.test", pool).send(MSG) == Delivered()
        await pool.close()
        assert await Email(config, "ops@example.test", pool).send(MSG) == Delivered()  # reconnects
        assert len(mailbox.messages) == 8 and mailbox.logins == 3  # the refused one's connection was dropped
        await pool.close()
        wrong = SmtpPool(SmtpConfig("127.0.0.1", port, "c@example.test", user="alerts", password="no",
                                    ca_file=pki.ca_file))  # fmt: skip
        refused = await Email(wrong.config, "ops@example.test", wrong).send(MSG)
        assert isinstance(refused, Failed) and refused.code == "535"


def test_smtp_password_never_in_clear() -> None:
    with pytest.raises(ValueError, match="CERTWATCH_SMTP_TLS: 'none' with CERTWATCH_SMTP_USER"):
        SmtpConfig("127.0.0.1", 25, "c@example.test", tls="none", user="u", password="p")
    assert "p4ss" not in repr(SmtpConfig("h", 587, "c@example.test", user="u", password="p4ss"))


async def test_apprise_url_delivers_through_its_service_in_a_thread(state: RobotState, base: str) -> None:
    url = base.replace("http://", "json://") + "/apprise"
    assert await AppriseUrl(url).send(MSG) == Delivered()
    [got] = state.of("apprise")
    assert got.body["title"] == MSG.subject and "Renew the certificate." in got.body["message"]
    state.apprise_status = 500
    assert isinstance(await AppriseUrl(url).send(MSG), Retryable)  # Apprise says only "not sent"
    with pytest.raises(ValueError, match="apprise_url"):
        AppriseUrl("nosuchservice://x")


def _aliyun(
    client: httpx.AsyncClient, base: str, secret: str = "aksecret", to: str = "13800138000"
) -> AliyunSms:
    return AliyunSms(client, base + "/", "LTAIkey", secret, "certwatch", "SMS_1000", to, allow_custom=True)


async def test_aliyun_sendsms_signed_with_a_fixed_template(
    state: RobotState, base: str, client: httpx.AsyncClient
) -> None:
    state.aliyun["LTAIkey"], state.aliyun_templates = "aksecret", {"SMS_1000"}
    sms_text = "certwatch: 1 certificate has expired. Details by email and in the console."
    message = Message("s", "www.example.test expired", sms=sms_text)
    assert await _aliyun(client, base).send(message) == Delivered("0^0")
    [got] = state.of("aliyun")
    assert (got.body["PhoneNumbers"], got.body["SignName"], got.body["TemplateCode"]) == (
        "13800138000", "certwatch", "SMS_1000")  # fmt: skip
    assert json.loads(got.body["TemplateParam"]) == {"content": sms_text}
    # The gateway's answers are what count: a bad secret, a bad number, HTTP 200 or not.
    assert await _aliyun(client, base, secret="wrong").send(message) == Failed(
        "SignatureDoesNotMatch", "Specified signature is not matched.")  # fmt: skip
    assert await _aliyun(client, base, to="not-a-number").send(message) == Failed(
        "isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number")  # fmt: skip
    # A domain name never reaches the gateway.
    refused = await _aliyun(client, base).send(Message("s", "t", sms="www.example.test expired"))
    assert isinstance(refused, Failed) and refused.code == "template"
    assert len(state.of("aliyun")) == 1


async def test_aliyun_throttling_is_retried_later(
    state: RobotState, base: str, client: httpx.AsyncClient
) -> None:
    state.aliyun["LTAIkey"], state.aliyun_templates, state.per_minute = "aksecret", {"SMS_1000"}, 1
    message = Message("s", "t", sms="certwatch: 1 site is unreachable. Details by email and in the console.")
    assert await _aliyun(client, base).send(message) == Delivered("0^0")
    throttled = await _aliyun(client, base).send(message)
    assert isinstance(throttled, Retryable) and throttled.code == "isv.BUSINESS_LIMIT_CONTROL"
