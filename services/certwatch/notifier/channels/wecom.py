"""WeCom group robot: the key in the URL is the credential; HTTP 200 with a non-zero `errcode` is a failure."""

from __future__ import annotations

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

HOSTS = ("qyapi.weixin.qq.com",)
BAD_KEY = 93000
RATE_LIMITED = 45009
_RETRYABLE = {RATE_LIMITED: 60.0, -1: 30.0}


class WeCom:
    name = "wecom"
    limits = Limits(max_body_bytes=4_096, per_minute=20, overflow=Overflow.SPLIT)  # markdown content

    def __init__(
        self,
        client: httpx.AsyncClient,
        webhook_url: str,
        *,
        allow_custom: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = check_url("wecom.webhook_url", webhook_url, HOSTS, allow_custom)
        self._clock = clock
        self._window = RateWindow(self.limits.per_minute)

    async def send(self, message: Message) -> Delivery:
        for part in fit(message.markdown or message.text, self.limits):
            wait = self._window.admit(self._clock())
            if wait:
                return Retryable("rate", "20 messages a minute per robot", wait, throttled=True)
            payload = {"msgtype": "markdown", "markdown": {"content": part}}
            response = await post(self._client, self._url, json=payload)
            outcome = (
                response
                if isinstance(response, Retryable)
                else coded_answer(response, "errcode", "errmsg", _RETRYABLE, throttled=(RATE_LIMITED,))
            )
            if not isinstance(outcome, Delivered):
                return outcome
        return Delivered()
