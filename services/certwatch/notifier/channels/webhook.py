"""Generic webhook: a JSON POST signed per contact, with a timestamp so a captured request can't be replayed.

Headers: `X-Certwatch-Timestamp` (seconds), `X-Certwatch-Signature: sha256=<hex HMAC-SHA256 of
f"{timestamp}.{body}">` with the contact's secret, `X-Certwatch-Delivery` (the receiver's dedup id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

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
    post,
)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class Webhook:
    name = "webhook"
    limits = Limits(max_body_bytes=256_000, per_minute=600, overflow=Overflow.TRUNCATE)

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        *,
        allow_custom: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = httpx.URL(url)
        # Any host may receive webhooks; only https unless custom (loopback, plain http) URLs are allowed.
        self._url = check_url("webhook.url", url, (parsed.host,), allow_custom)
        self._client = client
        self._secret = secret
        self._clock = clock

    async def send(self, message: Message) -> Delivery:
        payload = {
            "delivery_id": message.delivery_id,
            "subject": message.subject,
            "text": message.text,
            "data": message.data or {},
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > self.limits.max_body_bytes:
            return Failed("too_big", f"payload of {len(body)} bytes exceeds {self.limits.max_body_bytes}")
        ts = int(self._clock())
        headers = {
            "content-type": "application/json",
            "x-certwatch-timestamp": str(ts),
            "x-certwatch-signature": signature(self._secret, ts, body),
            "x-certwatch-delivery": message.delivery_id,
        }
        response = await post(self._client, self._url, content=body, headers=headers)
        if isinstance(response, Retryable):
            return response
        if 200 <= response.status_code < 300:
            return Delivered()
        return Failed(f"http {response.status_code}", response.text[:200])
