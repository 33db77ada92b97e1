"""SMS through a gateway shaped like Twilio's Messages API, with fixed templates.

Gateways (Alibaba Cloud's among them) refuse template variables that carry URLs, IPs or domain
names, so SMS text only ever counts ("3 certificates expire within 7 days") and points to email or
the console; `check_text` refuses anything that looks like a host before it reaches the gateway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import httpx

from certwatch.notifier.channels.base import (
    Delivered,
    Delivery,
    Failed,
    Limits,
    Message,
    Overflow,
    Retryable,
    check_url,
    fit,
    post,
)

# Anything dotted like a host name or IP, or a scheme: what SMS gateways reject as a "URL".
_HOSTLIKE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+|://", re.IGNORECASE)

# cause -> (singular, plural) phrase; counts fill in, nothing else does.
_TEMPLATES: Mapping[str, tuple[str, str]] = {
    "ABOUT_TO_EXPIRE": (
        "1 certificate expires within {days} days",
        "{n} certificates expire within {days} days",
    ),
    "EXPIRED": ("1 certificate has expired", "{n} certificates have expired"),
    "CERTIFICATE_MISMATCH": (
        "1 certificate does not match its domain",
        "{n} certificates do not match their domains",
    ),
    "CHAIN_VALIDATION_FAILED": (
        "1 certificate chain failed validation",
        "{n} certificate chains failed validation",
    ),
    "NETWORK_CONNECTION_FAILURE": ("1 site is unreachable", "{n} sites are unreachable"),
    "NO_SSL_CERTIFICATE": ("1 site serves no certificate", "{n} sites serve no certificate"),
    "ENABLE_FAILED": ("1 domain could not be monitored", "{n} domains could not be monitored"),
    "RECOVERED": ("1 domain recovered", "{n} domains recovered"),
}


def template_text(counts: Mapping[str, int], days: int = 30) -> str:
    """The SMS for `counts` (cause -> number of domains), e.g. "certwatch: 3 certificates expire within 7 days."."""
    phrases = []
    for cause, (one, many) in _TEMPLATES.items():  # a fixed order, whatever the caller's
        n = counts.get(cause, 0)
        if n <= 0:
            continue
        phrases.append((one if n == 1 else many).format(n=n, days=days))
    return "certwatch: " + "; ".join(phrases) + ". Details by email and in the console."


def check_text(text: str) -> str | None:
    """Why `text` may not go by SMS (it carries something host-like), or None."""
    found = _HOSTLIKE.search(text)
    return f"SMS text may not carry URLs or domain names (found {found.group(0)!r})" if found else None


class TwilioSms:
    name = "sms"
    limits = Limits(max_body_bytes=1_600, per_minute=60, overflow=Overflow.TRUNCATE)

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        to: str,
        *,
        allow_custom: bool = False,
    ) -> None:
        host = httpx.URL(base_url).host
        self._url = check_url("sms.base_url", base_url, (host,), allow_custom).rstrip("/")
        self._url += f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = client
        self._auth = (account_sid, auth_token)
        self._sender = sender
        self._to = to

    async def send(self, message: Message) -> Delivery:
        if message.sms is None:
            return Failed("template", "this alert has no SMS template")
        refused = check_text(message.sms)
        if refused:
            return Failed("template", refused)
        form = {"To": self._to, "From": self._sender, "Body": fit(message.sms, self.limits)[0]}
        response = await post(self._client, self._url, data=form, auth=self._auth)
        if isinstance(response, Retryable):
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            body = {}
        if response.status_code == 201 and isinstance(body, dict) and body.get("status") != "failed":
            return Delivered(str(body.get("sid", "")))
        code = (
            body.get("code", f"http {response.status_code}")
            if isinstance(body, dict)
            else response.status_code
        )
        text = body.get("message", "") if isinstance(body, dict) else ""
        return Failed(str(code), str(text) or f"HTTP {response.status_code}, not 201")
