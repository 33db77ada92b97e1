"""Lark/Feishu custom bot: signed with key `f"{seconds}\\n{secret}"` over an empty message; `code` 0 is success."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
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

HOSTS = ("open.feishu.cn", "open.larksuite.com")
BAD_SIGNATURE = 19021  # bad signature or stale timestamp
_RETRYABLE = {9499: 1.0, 11232: 60.0}  # too many requests; frequency limit


def sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key=f"{s}\\n{secret}", msg=b"")): key and message the other way round from DingTalk."""
    return base64.b64encode(
        hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    ).decode()


class Lark:
    name = "lark"
    limits = Limits(max_body_bytes=20_000, per_minute=100, overflow=Overflow.SPLIT)

    def __init__(
        self,
        client: httpx.AsyncClient,
        webhook_url: str,
        secret: str | None,
        *,
        allow_custom: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = check_url("lark.webhook_url", webhook_url, HOSTS, allow_custom)
        self._secret = secret
        self._clock = clock
        self._window = RateWindow(self.limits.per_minute)

    async def send(self, message: Message) -> Delivery:
        room = Limits(self.limits.max_body_bytes - 500, self.limits.per_minute, self.limits.overflow)
        for part in fit(message.text, room):
            wait = self._window.admit(self._clock())
            if wait:
                return Retryable("rate", "100 messages a minute per bot", wait, throttled=True)
            payload: dict[str, object] = {"msg_type": "text", "content": {"text": part}}
            if self._secret:
                seconds = int(self._clock())
                payload |= {"timestamp": str(seconds), "sign": sign(self._secret, seconds)}
            response = await post(self._client, self._url, json=payload)
            outcome = (
                response
                if isinstance(response, Retryable)
                else coded_answer(response, "code", "msg", _RETRYABLE, throttled=_RETRYABLE)
            )
            if not isinstance(outcome, Delivered):
                return outcome
        return Delivered()
