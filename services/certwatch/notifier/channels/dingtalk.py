"""DingTalk custom robot: markdown, signed with timestamp (ms) + HMAC-SHA256, `errcode` 0 is success."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable

import httpx

from certwatch.notifier.channels.base import (
    Delivered,
    Delivery,
    Limits,
    Message,
    Overflow,
    RateWindow,
    Retryable,
    check_url,
    coded_answer,
    fit,
    post,
)

HOSTS = ("oapi.dingtalk.com",)
THROTTLED = 130101  # more than 20 a minute: the robot is throttled for 10 minutes
TOO_BIG = 460101
_RETRYABLE = {THROTTLED: 600.0, -1: 30.0}  # -1: "system busy"


def sign(secret: str, timestamp_ms: int) -> str:
    """URL-safe `sign` parameter: base64(HMAC-SHA256(key=secret, msg=f"{ms}\\n{secret}"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


class DingTalk:
    name = "dingtalk"
    limits = Limits(max_body_bytes=20_000, per_minute=20, overflow=Overflow.SPLIT)

    def __init__(
        self,
        client: httpx.AsyncClient,
        webhook_url: str,
        secret: str,
        *,
        allow_custom: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = check_url("dingtalk.webhook_url", webhook_url, HOSTS, allow_custom)
        self._secret = secret
        self._clock = clock
        self._window = RateWindow(self.limits.per_minute)

    async def send(self, message: Message) -> Delivery:
        body = message.markdown or message.text
        # The JSON envelope and title take some of the 20,000 bytes.
        room = Limits(self.limits.max_body_bytes - 1_000, self.limits.per_minute, self.limits.overflow)
        for part in fit(body, room):
            outcome = await self._send_part(message.subject, part)
            if not isinstance(outcome, Delivered):
                return outcome
        return Delivered()

    async def _send_part(self, title: str, text: str) -> Delivery:
        wait = self._window.admit(self._clock())
        if wait:
            return Retryable("rate", "20 messages a minute per robot", wait, throttled=True)
        ms = int(self._clock() * 1000)
        url = f"{self._url}&timestamp={ms}&sign={sign(self._secret, ms)}"
        payload = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        response = await post(self._client, url, json=payload)
        if isinstance(response, Retryable):
            return response
        return coded_answer(response, "errcode", "errmsg", _RETRYABLE, throttled=(THROTTLED,))
