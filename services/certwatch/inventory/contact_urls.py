"""Validation of the robot, webhook and Apprise URLs a contact can be reached through.

Pure functions, no I/O. A robot URL is a credential (its token or key is the only thing that
lets anyone post to the group), and a typo in it sends alerts nowhere, or to a stranger: so
without ``allow_custom`` only the vendor's own https endpoint, in the shape the vendor shows it,
is accepted. With it (self-hosted relays, tests) any https URL is, and plain http only to a
loopback address. The generic webhook may go to any host, over https only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import SplitResult, parse_qsl, urlsplit

from certwatch.rules.targets import ValidationError

MAX_URL_LENGTH = 1024
MAX_SECRET_LENGTH = 128

DINGTALK_HOST = "oapi.dingtalk.com"
DINGTALK_PATH = "/robot/send"
WECOM_HOST = "qyapi.weixin.qq.com"
WECOM_PATH = "/cgi-bin/webhook/send"
LARK_HOSTS = ("open.feishu.cn", "open.larksuite.com")
LARK_PATH = re.compile(r"/open-apis/bot/v2/hook/[A-Za-z0-9-]{8,64}")

DINGTALK_EXAMPLE = f"https://{DINGTALK_HOST}{DINGTALK_PATH}?access_token=..."
WECOM_EXAMPLE = f"https://{WECOM_HOST}{WECOM_PATH}?key=..."
LARK_EXAMPLE = f"https://{LARK_HOSTS[0]}/open-apis/bot/v2/hook/..."

_ACCESS_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_WECOM_KEY = re.compile(r"[A-Za-z0-9-]{16,64}")
_APPRISE_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{1,31}")

Official = Callable[[str, SplitResult, int | None], None]


def robot_url(field: str, official: Official, example: str, *, allow_custom: bool) -> Callable[[str], str]:
    """The check of `field`: a value stripped if it is a URL the vendor would accept, else ValidationError."""

    def check(value: str) -> str:
        text = value.strip()
        url, port = _parsed(field, text, example)
        if allow_custom:
            _check_custom(field, url)
        else:
            official(field, url, port)
        return text

    return check


def dingtalk(field: str, url: SplitResult, port: int | None) -> None:
    if not _is_official(url, port, (DINGTALK_HOST,)) or url.path != DINGTALK_PATH:
        raise ValidationError(
            field, "dingtalk_url", f"use the robot webhook DingTalk shows, {DINGTALK_EXAMPLE}"
        )
    if not _only_param(url, "access_token", _ACCESS_TOKEN):
        raise ValidationError(
            field,
            "access_token",
            "the URL must carry exactly one access_token (and nothing else; certwatch adds"
            f" timestamp and sign itself), e.g. {DINGTALK_EXAMPLE}",
        )


def wecom(field: str, url: SplitResult, port: int | None) -> None:
    if not _is_official(url, port, (WECOM_HOST,)) or url.path != WECOM_PATH:
        raise ValidationError(field, "wecom_url", f"use the group robot webhook WeCom shows, {WECOM_EXAMPLE}")
    if not _only_param(url, "key", _WECOM_KEY):
        raise ValidationError(
            field, "wecom_key", f"the URL must carry exactly one robot key, e.g. {WECOM_EXAMPLE}"
        )


def lark(field: str, url: SplitResult, port: int | None) -> None:
    if not _is_official(url, port, LARK_HOSTS) or not LARK_PATH.fullmatch(url.path) or url.query:
        raise ValidationError(
            field, "lark_url", f"use the custom bot webhook Lark or Feishu shows, {LARK_EXAMPLE}"
        )


def any_https(field: str, url: SplitResult, port: int | None) -> None:
    """A generic webhook goes wherever its owner runs a receiver, but never in clear."""
    if url.scheme != "https" or not url.hostname:
        raise ValidationError(
            field, "url_scheme", "the webhook URL must use https, e.g. https://hooks.example.com/certwatch"
        )


def secret(field: str, value: str, *, min_length: int, pattern: re.Pattern[str], hint: str) -> str:
    """A robot or webhook secret: printable ASCII of a sensible length (it is never shown again)."""
    text = value.strip()
    if not min_length <= len(text) <= MAX_SECRET_LENGTH or not pattern.fullmatch(text):
        raise ValidationError(field, "secret_format", hint)
    return text


def apprise_url(field: str, value: str) -> str:
    """An Apprise URL (`service://credentials/...`). Which services exist is Apprise's to say: the
    notifier checks it when it builds the channel, and `certwatch contacts test` shows the answer."""
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if len(text) > MAX_URL_LENGTH:
        raise ValidationError(field, "too_long", f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not text.isascii() or not text.isprintable() or " " in text:
        raise ValidationError(field, "invalid_character", "the URL contains spaces or non-ASCII characters")
    if not sep or not rest or not _APPRISE_SCHEME.fullmatch(scheme):
        raise ValidationError(
            field, "url_format", "expected an Apprise URL such as tgram://bottoken/chatid or slack://T/B/C"
        )
    return text


def _parsed(field: str, text: str, example: str) -> tuple[SplitResult, int | None]:
    if len(text) > MAX_URL_LENGTH:
        raise ValidationError(field, "too_long", f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not text.isascii() or not text.isprintable() or " " in text:
        raise ValidationError(
            field,
            "invalid_character",
            "the URL contains spaces or non-ASCII characters; paste it exactly as shown",
        )
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError:
        raise ValidationError(field, "url_format", f"not a valid URL; expected {example}") from None
    if url.username is not None or url.password is not None or url.fragment:
        raise ValidationError(field, "url_format", "the URL must not contain user info or a '#' fragment")
    return url, port


def _is_official(url: SplitResult, port: int | None, hosts: tuple[str, ...]) -> bool:
    return url.scheme == "https" and url.hostname in hosts and port in (None, 443)


def _only_param(url: SplitResult, name: str, pattern: re.Pattern[str]) -> bool:
    try:
        query = parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return False
    values = [value for key, value in query if key == name]
    return len(query) == 1 and len(values) == 1 and bool(pattern.fullmatch(values[0]))


def _check_custom(field: str, url: SplitResult) -> None:
    """Any https host is allowed; plain http only to loopback, where nothing can eavesdrop."""
    if not url.hostname:
        raise ValidationError(field, "url_format", "the URL has no host name")
    if url.scheme == "https" or (url.scheme == "http" and _is_loopback(url.hostname)):
        return
    raise ValidationError(
        field,
        "url_scheme",
        "the URL must use https (plain http is allowed only to a loopback address such as 127.0.0.1)",
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
