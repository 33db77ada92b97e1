"""Validation of alert contacts and of the contact list attached to a monitored domain.

Pure functions, no I/O. A contact is only useful if at least one channel can reach it, so
that is checked here rather than discovered when the first alert fails. All problems in
one contact are reported together (one :class:`ValidationError` with several violations)
so a form can highlight every field in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from certwatch.inventory import contact_urls as urls_
from certwatch.rules.targets import FieldViolation, ValidationError, normalize_hostname

__all__ = [
    "DINGTALK_WEBHOOK_HOST",
    "DINGTALK_WEBHOOK_PATH",
    "MAX_CONTACTS_PER_DOMAIN",
    "MAX_CONTACT_NAME_LENGTH",
    "MAX_CONTACT_REF_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_PHONE_INPUT_LENGTH",
    "MAX_SECRET_LENGTH",
    "MAX_WEBHOOK_LENGTH",
    "Contact",
    "validate_contact",
    "validate_domain_contacts",
]

#: The product allows up to three alert contacts per domain name.
MAX_CONTACTS_PER_DOMAIN = 3
MAX_CONTACT_NAME_LENGTH = 64
#: A contact name or id as referenced from a domain (CSV cell, API field).
MAX_CONTACT_REF_LENGTH = 64
MAX_PHONE_INPUT_LENGTH = 32
MAX_EMAIL_LENGTH = 254
_MAX_EMAIL_LOCAL_LENGTH = 64
MAX_WEBHOOK_LENGTH = urls_.MAX_URL_LENGTH
MAX_SECRET_LENGTH = urls_.MAX_SECRET_LENGTH

DINGTALK_WEBHOOK_HOST = urls_.DINGTALK_HOST
DINGTALK_WEBHOOK_PATH = urls_.DINGTALK_PATH

_PHONE_SEPARATORS = re.compile(r"[\s-]+")
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_SECRET = re.compile(r"SEC[A-Za-z0-9]+")
_LARK_SECRET = re.compile(r"[A-Za-z0-9]+")
_WEBHOOK_SECRET = re.compile(r"[!-~]+")


@dataclass(frozen=True, slots=True)
class Contact:
    """A validated contact. Robot URLs, secrets and the Apprise URL are credentials, so they stay
    out of repr(). The field names are the keys of the sealed data the notifier opens."""

    name: str
    phone: str | None
    email: str | None
    dingtalk_webhook: str | None = field(default=None, repr=False)
    dingtalk_secret: str | None = field(default=None, repr=False)
    wecom_webhook: str | None = field(default=None, repr=False)
    lark_webhook: str | None = field(default=None, repr=False)
    lark_secret: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    apprise_url: str | None = field(default=None, repr=False)

    def has_secret(self) -> bool:
        return any((self.dingtalk_secret, self.lark_secret, self.webhook_secret, self.apprise_url))


def validate_contact(
    name: str | None,
    phone: str | None,
    email: str | None,
    dingtalk_webhook: str | None,
    dingtalk_secret: str | None,
    *,
    wecom_webhook: str | None = None,
    lark_webhook: str | None = None,
    lark_secret: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    apprise_url: str | None = None,
    allow_custom_webhook_hosts: bool = False,
) -> Contact:
    """Normalise a contact or raise :class:`ValidationError` listing every problem.

    Blank strings count as absent. ``allow_custom_webhook_hosts`` admits any https URL
    (and plain http to a loopback address) for self-hosted relays and tests; without it
    only the vendors' official robot endpoints are accepted, because a typo there would
    silently send alerts nowhere (or to a stranger). A generic webhook needs a secret: its
    receiver can only trust what is signed.
    """
    custom = allow_custom_webhook_hosts
    violations: list[FieldViolation] = []
    clean_name = _check(violations, _name, "" if name is None else name)
    clean_phone = _check(violations, _phone, _blank_to_none(phone))
    clean_email = _check(violations, _email, _blank_to_none(email))
    urls = {
        "dingtalk_webhook": (dingtalk_webhook, urls_.dingtalk, urls_.DINGTALK_EXAMPLE),
        "wecom_webhook": (wecom_webhook, urls_.wecom, urls_.WECOM_EXAMPLE),
        "lark_webhook": (lark_webhook, urls_.lark, urls_.LARK_EXAMPLE),
        "webhook_url": (webhook_url, urls_.any_https, "https://hooks.example.com/certwatch"),
    }
    clean: dict[str, str | None] = {}
    for key, (value, official, example) in urls.items():
        checker = urls_.robot_url(key, official, example, allow_custom=custom)
        clean[key] = _check(violations, checker, _blank_to_none(value))
    secrets = {
        "dingtalk_secret": (dingtalk_secret, "dingtalk_webhook", _secret),
        "lark_secret": (lark_secret, "lark_webhook", _lark_secret),
        "webhook_secret": (webhook_secret, "webhook_url", _webhook_secret),
    }
    for key, (value, url_key, checker) in secrets.items():
        clean[key] = _check(violations, checker, _blank_to_none(value))
        if clean[key] is not None and _blank_to_none(urls[url_key][0]) is None:
            violations.append(FieldViolation(
                key, "secret_without_webhook",
                f"a secret was given without {url_key}; add the URL or clear the secret",
            ))  # fmt: skip
    if _blank_to_none(webhook_url) is not None and _blank_to_none(webhook_secret) is None:
        violations.append(FieldViolation(
            "webhook_secret", "required", "a webhook needs a secret to sign with (16 to 128 characters)"
        ))  # fmt: skip
    clean_apprise = _check(
        violations, lambda v: urls_.apprise_url("apprise_url", v), _blank_to_none(apprise_url)
    )
    given = (phone, email, apprise_url, *(u[0] for u in urls.values()))
    if all(_blank_to_none(v) is None for v in given):
        violations.append(
            FieldViolation(
                "contact",
                "channel_required",
                "give at least one way to reach this contact: phone, email, a DingTalk, WeCom or"
                " Lark robot, a webhook or an Apprise URL",
            )
        )
    if violations:
        raise ValidationError.from_violations(violations)
    assert clean_name is not None  # a missing name is a violation above
    return Contact(clean_name, clean_phone, clean_email, apprise_url=clean_apprise, **clean)


def validate_domain_contacts(ids: Sequence[str]) -> tuple[str, ...]:
    """Check the contact references of one domain: at most three, none blank or repeated.

    References are names or ids; whether they exist is the caller's question (it needs
    storage). Order is kept because the first contact is shown first.
    """
    if isinstance(ids, str):
        raise TypeError("pass a sequence of contact references, not one string")
    if len(ids) > MAX_CONTACTS_PER_DOMAIN:
        raise ValidationError(
            "contacts",
            "too_many",
            f"{len(ids)} contacts given; a domain can have at most {MAX_CONTACTS_PER_DOMAIN}",
        )
    cleaned: list[str] = []
    violations: list[FieldViolation] = []
    for position, ref in enumerate(ids, start=1):
        text = ref.strip()
        if not text:
            violations.append(FieldViolation("contacts", "required", f"contact {position} is blank"))
        elif len(text) > MAX_CONTACT_REF_LENGTH:
            violations.append(
                FieldViolation(
                    "contacts",
                    "too_long",
                    f"contact {position} is longer than {MAX_CONTACT_REF_LENGTH} characters",
                )
            )
        elif text in cleaned:
            violations.append(
                FieldViolation("contacts", "duplicate", f"contact {text!r} is listed twice; list it once")
            )
        else:
            cleaned.append(text)
    if violations:
        raise ValidationError.from_violations(violations)
    return tuple(cleaned)


def _check(violations: list[FieldViolation], checker: Callable[[str], str], value: str | None) -> str | None:
    """Run one field check, collecting its violations instead of stopping at the first field."""
    if value is None:
        return None
    try:
        return checker(value)
    except ValidationError as error:
        violations.extend(error.violations)
        return None


def _blank_to_none(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value


def _name(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationError("name", "required", "enter a name for the contact")
    if len(text) > MAX_CONTACT_NAME_LENGTH:
        raise ValidationError(
            "name",
            "too_long",
            f"the name is {len(text)} characters long; use at most {MAX_CONTACT_NAME_LENGTH}",
        )
    if not text.isprintable():
        raise ValidationError(
            "name", "invalid_character", "the name contains control or invisible characters"
        )
    return text


def _phone(value: str) -> str:
    """E.164 (``+`` and 6-15 digits) or an 11-digit mainland China mobile, stored as E.164.

    One stored form means the same person typed two ways is recognisably the same number.
    """
    text = value.strip()
    if len(text) > MAX_PHONE_INPUT_LENGTH:
        raise ValidationError(
            "phone",
            "too_long",
            f"the phone number is longer than {MAX_PHONE_INPUT_LENGTH} characters",
        )
    digits = _PHONE_SEPARATORS.sub("", text)
    if _E164.fullmatch(digits):
        return digits
    if _CN_MOBILE.fullmatch(digits):
        return "+86" + digits
    raise ValidationError(
        "phone",
        "phone_format",
        "enter an international number starting with '+' and the country code (6 to 15"
        " digits, e.g. '+86 138 0013 8000') or an 11-digit mainland China mobile number",
    )


def _email(value: str) -> str:
    """A deliberately small RFC 5322 subset: dot-atom local part at a DNS host name."""
    text = value.strip()
    if len(text) > MAX_EMAIL_LENGTH:
        raise ValidationError(
            "email", "too_long", f"the address is longer than {MAX_EMAIL_LENGTH} characters"
        )
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError("email", "email_format", "enter an address like 'ops@example.com'")
    if len(local) > _MAX_EMAIL_LOCAL_LENGTH or not _EMAIL_LOCAL.fullmatch(local):
        raise ValidationError(
            "email",
            "email_format",
            "the part before '@' may use letters, digits and . _ + - (no leading, trailing or"
            " double dots, at most 64 characters); e.g. 'ops@example.com'",
        )
    try:
        host = normalize_hostname(domain, field="email")
    except ValidationError as error:
        raise ValidationError(
            "email", "email_domain", f"the part after '@' is not a valid domain: {error.message}"
        ) from None
    address = f"{local}@{host}"
    if len(address) > MAX_EMAIL_LENGTH:
        raise ValidationError(
            "email", "too_long", f"the address is longer than {MAX_EMAIL_LENGTH} characters"
        )
    return address


def _secret(value: str) -> str:
    return urls_.secret("dingtalk_secret", value, min_length=4, pattern=_SECRET, hint=(
        "the robot secret starts with 'SEC' followed by letters and digits (at most"
        f" {MAX_SECRET_LENGTH} characters); copy it from the robot's security settings"))  # fmt: skip


def _lark_secret(value: str) -> str:
    return urls_.secret("lark_secret", value, min_length=8, pattern=_LARK_SECRET, hint=(
        "the bot's signing secret is letters and digits (8 to 128); copy it from the bot's"
        " security settings"))  # fmt: skip


def _webhook_secret(value: str) -> str:
    return urls_.secret("webhook_secret", value, min_length=16, pattern=_WEBHOOK_SECRET, hint=(
        "the webhook secret is 16 to 128 printable ASCII characters without spaces; the receiver"
        " checks X-Certwatch-Signature with it"))  # fmt: skip
