"""Unit tests for contact validation and the per-domain contact list."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certwatch.inventory.contacts import (
    MAX_CONTACTS_PER_DOMAIN,
    Contact,
    validate_contact,
    validate_domain_contacts,
)
from certwatch.rules.targets import ValidationError

TOKEN = "0123456789abcdef" * 4
WEBHOOK = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
SECRET = "SEC" + "0123456789abcdef" * 4


def _rules(error: ValidationError) -> set[tuple[str, str]]:
    return {(v.field, v.rule) for v in error.violations}


def _refused(**fields: str | None) -> set[tuple[str, str]]:
    args: dict[str, str | None] = {
        "name": "Ops",
        "phone": None,
        "email": "ops@example.com",
        "dingtalk_webhook": None,
        "dingtalk_secret": None,
    }
    args.update(fields)
    with pytest.raises(ValidationError) as caught:
        validate_contact(
            args["name"],
            args["phone"],
            args["email"],
            args["dingtalk_webhook"],
            args["dingtalk_secret"],
        )
    return _rules(caught.value)


def test_full_contact_is_normalised() -> None:
    contact = validate_contact(
        "  Alice Ops ", "+86 138-0013-8000", " Alice@Example.COM ", f" {WEBHOOK} ", SECRET
    )
    assert contact == Contact("Alice Ops", "+8613800138000", "Alice@example.com", WEBHOOK, SECRET)


def test_credentials_stay_out_of_repr() -> None:
    contact = validate_contact("Ops", None, None, WEBHOOK, SECRET)
    assert TOKEN not in repr(contact)
    assert SECRET not in repr(contact)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+1-415-555-0100", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+123456", "+123456"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_phone_accepted(phone: str, expected: str) -> None:
    assert validate_contact("Ops", phone, None, None, None).phone == expected


@pytest.mark.parametrize(
    "phone",
    [
        "12345",
        "+12345",
        "+1234567890123456",
        "+0123456789",
        "12800138000",  # mainland mobiles start 13-19
        "1380013800",
        "(415) 555-0100",
        "+86 138.0013.8000",
        "1" * 40,
        "phone",
    ],
)
def test_phone_refused(phone: str) -> None:
    rules = _refused(phone=phone)
    assert rules & {("phone", "phone_format"), ("phone", "too_long")}


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ops@example.com", "ops@example.com"),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("ops@bücher.de", "ops@xn--bcher-kva.de"),
        ("ops@example.id", "ops@example.id"),  # .id is refused as a monitored target only
    ],
)
def test_email_accepted(email: str, expected: str) -> None:
    assert validate_contact("Ops", None, email, None, None).email == expected


@pytest.mark.parametrize(
    ("email", "rule"),
    [
        ("ops", "email_format"),
        ("ops@", "email_format"),
        ("@example.com", "email_format"),
        (".ops@example.com", "email_format"),
        ("ops.@example.com", "email_format"),
        ("o..ps@example.com", "email_format"),
        ("o ps@example.com", "email_format"),
        ("a" * 65 + "@example.com", "email_format"),
        ("ops@localhost", "email_domain"),
        ("ops@exa_mple.com", "email_domain"),
        ("ops@example..com", "email_domain"),
        ("a@b@example.com", "email_format"),
        ("ops@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com", "too_long"),
    ],
)
def test_email_refused(email: str, rule: str) -> None:
    assert ("email", rule) in _refused(email=email)


def test_name_rules() -> None:
    assert ("name", "required") in _refused(name="  ")
    assert ("name", "required") in _refused(name=None)
    assert ("name", "too_long") in _refused(name="n" * 65)
    assert ("name", "invalid_character") in _refused(name="Ops\x07")
    assert validate_contact("n" * 64, None, "a@example.com", None, None).name == "n" * 64


def test_at_least_one_channel() -> None:
    assert ("contact", "channel_required") in _refused(email=None)
    assert ("contact", "channel_required") in _refused(email="  ", phone="")
    assert validate_contact("Ops", None, None, WEBHOOK, None).dingtalk_webhook == WEBHOOK


def test_all_violations_are_reported_together() -> None:
    rules = _refused(name="", phone="12", email="bad", dingtalk_webhook="x", dingtalk_secret="y")
    assert {field for field, _ in rules} == {
        "name",
        "phone",
        "email",
        "dingtalk_webhook",
        "dingtalk_secret",
    }


@pytest.mark.parametrize(
    ("webhook", "rule"),
    [
        (f"http://oapi.dingtalk.com/robot/send?access_token={TOKEN}", "dingtalk_url"),
        (f"https://oapi.dingtalk.com.evil.example/robot/send?access_token={TOKEN}", "dingtalk_url"),
        (f"https://evil.example/robot/send?access_token={TOKEN}", "dingtalk_url"),
        (f"https://oapi.dingtalk.com:8443/robot/send?access_token={TOKEN}", "dingtalk_url"),
        (f"https://oapi.dingtalk.com/robot/other?access_token={TOKEN}", "dingtalk_url"),
        ("https://oapi.dingtalk.com/robot/send", "access_token"),
        ("https://oapi.dingtalk.com/robot/send?access_token=", "access_token"),
        ("https://oapi.dingtalk.com/robot/send?access_token=short", "access_token"),
        (f"{WEBHOOK}&timestamp=1&sign=x", "access_token"),
        (f"{WEBHOOK}&access_token={TOKEN}", "access_token"),
        (f"https://user:pw@oapi.dingtalk.com/robot/send?access_token={TOKEN}", "url_format"),
        (f"{WEBHOOK}#x", "url_format"),
        (f"{WEBHOOK} x", "invalid_character"),
        ("https://oapi.dingtalk.com:99999/robot/send", "url_format"),
        ("https://" + "a" * 1100, "too_long"),
    ],
)
def test_official_webhook_refused(webhook: str, rule: str) -> None:
    assert ("dingtalk_webhook", rule) in _refused(dingtalk_webhook=webhook)


def test_official_webhook_accepts_explicit_443() -> None:
    url = f"https://oapi.dingtalk.com:443/robot/send?access_token={TOKEN}"
    assert validate_contact("Ops", None, None, url, None).dingtalk_webhook == url


@pytest.mark.parametrize(
    "url",
    [
        "https://relay.internal.example/hooks/dingtalk",
        "https://relay.internal.example:8443/robot/send?access_token=abc&x=1",
        "http://127.0.0.1:41234/robot/send?access_token=abc",
        "http://127.0.0.2/hook",
        "http://[::1]:9000/hook",
    ],
)
def test_custom_webhook_hosts_when_allowed(url: str) -> None:
    contact = validate_contact("Ops", None, None, url, SECRET, allow_custom_webhook_hosts=True)
    assert contact.dingtalk_webhook == url
    with pytest.raises(ValidationError):
        validate_contact("Ops", None, None, url, None)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://relay.example/hook", "url_scheme"),
        ("http://10.0.0.1/hook", "url_scheme"),
        ("http://localhost/hook", "url_scheme"),
        ("ftp://127.0.0.1/hook", "url_scheme"),
        ("https:///hook", "url_format"),
        ("https://user@relay.example/hook", "url_format"),
    ],
)
def test_custom_webhook_still_refuses(url: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_contact("Ops", None, None, url, None, allow_custom_webhook_hosts=True)
    assert ("dingtalk_webhook", rule) in _rules(caught.value)


@pytest.mark.parametrize("secret", ["abc", "SEC", "sec123", "SEC 123", "SEC-123", "SEC" + "a" * 126])
def test_secret_refused(secret: str) -> None:
    assert ("dingtalk_secret", "secret_format") in _refused(dingtalk_webhook=WEBHOOK, dingtalk_secret=secret)


def test_secret_without_webhook() -> None:
    assert ("dingtalk_secret", "secret_without_webhook") in _refused(dingtalk_secret=SECRET)


# --- domain contact lists -----------------------------------------------------------------


def test_domain_contacts_accepted() -> None:
    assert validate_domain_contacts([]) == ()
    assert validate_domain_contacts([" ops ", "alice", "42"]) == ("ops", "alice", "42")


@pytest.mark.parametrize(
    ("ids", "rule"),
    [
        (["a", "b", "c", "d"], "too_many"),
        (["a", "a"], "duplicate"),
        (["a", " a "], "duplicate"),
        (["a", ""], "required"),
        (["x" * 65], "too_long"),
    ],
)
def test_domain_contacts_refused(ids: list[str], rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_domain_contacts(ids)
    assert ("contacts", rule) in _rules(caught.value)


def test_domain_contacts_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        validate_domain_contacts("abc")


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=5, max_size=14),
    st.sampled_from("123456789"),
    st.lists(st.sampled_from([" ", "-", ""]), min_size=15, max_size=15),
)
def test_any_e164_number_normalises_to_its_digits(rest: str, first: str, separators: list[str]) -> None:
    digits = first + rest
    typed = "+" + "".join(d + s for d, s in zip(digits, separators, strict=False))
    assert validate_contact("Ops", typed, None, None, None).phone == "+" + digits


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=40)),
    st.one_of(st.none(), st.text(max_size=40)),
    st.one_of(st.none(), st.text(max_size=40), st.just("ops@example.com")),
    st.one_of(st.none(), st.text(max_size=80), st.just(WEBHOOK)),
    st.one_of(st.none(), st.text(max_size=20), st.just(SECRET)),
    st.booleans(),
)
def test_validate_contact_raises_only_validation_error(
    name: str | None,
    phone: str | None,
    email: str | None,
    webhook: str | None,
    secret: str | None,
    custom: bool,
) -> None:
    try:
        contact = validate_contact(name, phone, email, webhook, secret, allow_custom_webhook_hosts=custom)
    except ValidationError as error:
        assert error.violations
        return
    # Whatever was accepted is a fixed point: validating it again changes nothing.
    again = validate_contact(
        contact.name,
        contact.phone,
        contact.email,
        contact.dingtalk_webhook,
        contact.dingtalk_secret,
        allow_custom_webhook_hosts=custom,
    )
    assert again == contact
    assert len(validate_domain_contacts([contact.name])) == 1 <= MAX_CONTACTS_PER_DOMAIN


# --- WeCom, Lark, webhook and Apprise -----------------------------------------------------

WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
LARK = "https://open.feishu.cn/open-apis/bot/v2/hook/2c1b5e4f-0123-4a5b-9c8d-abcdef012345"


def test_official_robots_webhook_and_apprise_accepted() -> None:
    contact = validate_contact(
        "Ops", None, None, None, None, wecom_webhook=f" {WECOM} ", lark_webhook=LARK, lark_secret="abcDEF123",
        webhook_url="https://hooks.example.com/certwatch", webhook_secret="s3cret-0123456789", apprise_url="tgram://1:a/2",
    )  # fmt: skip
    assert (contact.wecom_webhook, contact.lark_webhook, contact.lark_secret) == (WECOM, LARK, "abcDEF123")
    assert contact.has_secret() and "abcDEF123" not in repr(contact) and "tgram" not in repr(contact)
    assert (
        validate_contact("Ops", None, None, None, None, apprise_url="ntfy://topic").apprise_url
        == "ntfy://topic"
    )


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"wecom_webhook": "https://qyapi.weixin.qq.com.evil.example/cgi-bin/webhook/send?key=x"}, ("wecom_webhook", "wecom_url")),
        ({"wecom_webhook": "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4"}, ("wecom_webhook", "wecom_url")),
        ({"wecom_webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=short"}, ("wecom_webhook", "wecom_key")),
        ({"lark_webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/"}, ("lark_webhook", "lark_url")),
        ({"lark_webhook": "https://example.com/open-apis/bot/v2/hook/abcdefgh"}, ("lark_webhook", "lark_url")),
        ({"lark_secret": "abcdefgh1"}, ("lark_secret", "secret_without_webhook")),
        ({"lark_webhook": LARK, "lark_secret": "short"}, ("lark_secret", "secret_format")),
        ({"webhook_url": "http://hooks.example.com/x", "webhook_secret": "s3cret-0123456789"}, ("webhook_url", "url_scheme")),
        ({"webhook_url": "https://hooks.example.com/x"}, ("webhook_secret", "required")),
        ({"webhook_url": "https://hooks.example.com/x", "webhook_secret": "too short"}, ("webhook_secret", "secret_format")),
        ({"apprise_url": "no scheme here"}, ("apprise_url", "invalid_character")),
        ({"apprise_url": "://x"}, ("apprise_url", "url_format")),
    ],
)  # fmt: skip
def test_robot_webhook_and_apprise_refused(fields: dict[str, str], rule: tuple[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_contact("Ops", None, "ops@example.com", None, None, **fields)
    assert rule in _rules(caught.value)


def test_custom_hosts_admit_loopback_http_robots_but_never_plain_http_elsewhere() -> None:
    loop = "http://127.0.0.1:9/cgi-bin/webhook/send?key=k"
    contact = validate_contact(
        "Ops", None, None, None, None, wecom_webhook=loop, allow_custom_webhook_hosts=True
    )
    assert contact.wecom_webhook == loop
    with pytest.raises(ValidationError) as caught:
        validate_contact(
            "Ops",
            None,
            None,
            None,
            None,
            lark_webhook="http://10.0.0.1/hook",
            allow_custom_webhook_hosts=True,
        )
    assert ("lark_webhook", "url_scheme") in _rules(caught.value)


def test_any_channel_is_enough_and_none_is_refused() -> None:
    assert validate_contact("Ops", None, None, None, None, wecom_webhook=WECOM).email is None
    with pytest.raises(ValidationError) as caught:
        validate_contact("Ops", None, None, None, None)
    assert ("contact", "channel_required") in _rules(caught.value)
