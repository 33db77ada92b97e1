"""Validation of alert contacts and of the contact list attached to a monitored domain.

Pure functions, no I/O. A contact is only useful if at least one channel can reach it, so
that is checked here rather than discovered when the first alert fails. All problems in
one contact are reported together (one :class:`ValidationError` with several violations)
so a form can highlight every field in one round trip.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, urlsplit

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
MAX_WEBHOOK_LENGTH = 1024
MAX_SECRET_LENGTH = 128

DINGTALK_WEBHOOK_HOST = "oapi.dingtalk.com"
DINGTALK_WEBHOOK_PATH = "/robot/send"

_PHONE_SEPARATORS = re.compile(r"[\s-]+")
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ACCESS_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SECRET = re.compile(r"SEC[A-Za-z0-9]+")
_OFFICIAL_EXAMPLE = f"https://{DINGTALK_WEBHOOK_HOST}{DINGTALK_WEBHOOK_PATH}?access_token=..."


@dataclass(frozen=True, slots=True)
class Contact:
    """A validated contact. Webhook and secret are credentials, so they stay out of repr()."""

    name: str
    phone: str | None
    email: str | None
    dingtalk_webhook: str | None = field(default=None, repr=False)
    dingtalk_secret: str | None = field(default=None, repr=False)


def validate_contact(
    name: str | None,
    phone: str | None,
    email: str | None,
    dingtalk_webhook: str | None,
    dingtalk_secret: str | None,
    *,
    allow_custom_webhook_hosts: bool = False,
) -> Contact:
    """Normalise a contact or raise :class:`ValidationError` listing every problem.

    Blank strings count as absent. ``allow_custom_webhook_hosts`` admits any https URL
    (and plain http to a loopback address) for self-hosted relays and tests; without it
    only the official DingTalk robot endpoint is accepted, because a typo there would
    silently send alerts nowhere (or to a stranger).
    """
    violations: list[FieldViolation] = []
    clean_name = _check(violations, _name, "" if name is None else name)
    clean_phone = _check(violations, _phone, _blank_to_none(phone))
    clean_email = _check(violations, _email, _blank_to_none(email))
    webhook = _blank_to_none(dingtalk_webhook)
    clean_webhook = _check(
        violations, lambda v: _webhook(v, allow_custom=allow_custom_webhook_hosts), webhook
    )
    clean_secret = _check(violations, _secret, _blank_to_none(dingtalk_secret))
    if clean_secret is not None and webhook is None:
        violations.append(
            FieldViolation(
                "dingtalk_secret",
                "secret_without_webhook",
                "a DingTalk secret was given without a webhook; add the robot's webhook URL"
                " or clear the secret",
            )
        )
    if _blank_to_none(phone) is None and _blank_to_none(email) is None and webhook is None:
        violations.append(
            FieldViolation(
                "contact",
                "channel_required",
                "give at least one way to reach this contact: phone, email or DingTalk webhook",
            )
        )
    if violations:
        raise ValidationError.from_violations(violations)
    assert clean_name is not None  # a missing name is a violation above
    return Contact(clean_name, clean_phone, clean_email, clean_webhook, clean_secret)


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


def _webhook(value: str, *, allow_custom: bool) -> str:
    text = value.strip()
    if len(text) > MAX_WEBHOOK_LENGTH:
        raise ValidationError(
            "dingtalk_webhook",
            "too_long",
            f"the URL is longer than {MAX_WEBHOOK_LENGTH} characters",
        )
    if not text.isascii() or not text.isprintable() or " " in text:
        raise ValidationError(
            "dingtalk_webhook",
            "invalid_character",
            "the URL contains spaces or non-ASCII characters; paste it exactly as DingTalk shows it",
        )
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError:
        raise ValidationError(
            "dingtalk_webhook", "url_format", f"not a valid URL; expected {_OFFICIAL_EXAMPLE}"
        ) from None
    if url.username is not None or url.password is not None or url.fragment:
        raise ValidationError(
            "dingtalk_webhook",
            "url_format",
            "the URL must not contain user info or a '#' fragment",
        )
    if allow_custom:
        _check_custom_webhook(url)
    else:
        _check_official_webhook(url, port)
    return text


def _check_official_webhook(url: SplitResult, port: int | None) -> None:
    if (
        url.scheme != "https"
        or url.hostname != DINGTALK_WEBHOOK_HOST
        or port not in (None, 443)
        or url.path != DINGTALK_WEBHOOK_PATH
    ):
        raise ValidationError(
            "dingtalk_webhook",
            "dingtalk_url",
            f"use the robot webhook DingTalk shows, {_OFFICIAL_EXAMPLE}",
        )
    try:
        query = parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        query = []
    tokens = [value for key, value in query if key == "access_token"]
    if len(query) != 1 or len(tokens) != 1 or not _ACCESS_TOKEN.fullmatch(tokens[0]):
        raise ValidationError(
            "dingtalk_webhook",
            "access_token",
            "the URL must carry exactly one access_token (and nothing else; certwatch adds"
            f" timestamp and sign itself), e.g. {_OFFICIAL_EXAMPLE}",
        )


def _check_custom_webhook(url: SplitResult) -> None:
    """Any https host is allowed; plain http only to loopback, where nothing can eavesdrop."""
    if not url.hostname:
        raise ValidationError("dingtalk_webhook", "url_format", "the URL has no host name")
    if url.scheme == "https" or (url.scheme == "http" and _is_loopback(url.hostname)):
        return
    raise ValidationError(
        "dingtalk_webhook",
        "url_scheme",
        "the URL must use https (plain http is allowed only to a loopback address such as 127.0.0.1)",
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_SECRET_LENGTH or not _SECRET.fullmatch(text):
        raise ValidationError(
            "dingtalk_secret",
            "secret_format",
            "the robot secret starts with 'SEC' followed by letters and digits (at most"
            f" {MAX_SECRET_LENGTH} characters); copy it from the robot's security settings",
        )
    return text
