"""What every channel shares: its limits as data, the typed outcome of a send, one HTTP client.

A vendor's answer decides the outcome, not the HTTP status: DingTalk, WeCom and Lark answer 200
with an error code when they refuse a message, and a retry is only worth it when the vendor says
so (rate limits, server errors), so `send()` returns a `Delivery`, never a bool.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class Overflow(enum.StrEnum):
    SPLIT = "split"  # a long digest becomes several messages
    TRUNCATE = "truncate"  # the tail is cut and marked


@dataclass(frozen=True, slots=True)
class Limits:
    """A service's published limits, which the sender honours before the vendor refuses."""

    max_body_bytes: int
    per_minute: int
    overflow: Overflow


@dataclass(frozen=True, slots=True)
class Message:
    """One alert or digest: the subject, plain text (every channel), optional HTML / markdown."""

    subject: str
    text: str
    html: str | None = None
    markdown: str | None = None
    sms: str | None = None  # a fixed-template text without domains or URLs (see channels.sms)
    delivery_id: str = ""  # the idempotency key's digest: a receiver's dedup handle
    data: dict[str, Any] | None = None  # structured payload for webhooks


@dataclass(frozen=True, slots=True)
class Delivered:
    vendor_id: str = ""


@dataclass(frozen=True, slots=True)
class Retryable:
    """Try again after `retry_after` seconds (the vendor's hint, or the backoff schedule's if 0).

    `throttled`: the vendor (or our own window) asked to slow down; the message was not refused,
    so the wait spends none of the delivery's attempts (only a deadline ends it)."""

    code: str
    message: str
    retry_after: float = 0.0
    throttled: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """The vendor refused for good (bad key, bad signature, message too big): retrying won't help."""

    code: str
    message: str


Delivery = Delivered | Retryable | Failed


class Channel(Protocol):
    name: str
    limits: Limits

    async def send(self, message: Message) -> Delivery: ...


class RateWindow:
    """At most `per_minute` sends in any 60 s (a robot's limit): queue, never drop, never trip the vendor."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: list[float] = []

    def admit(self, now: float) -> float:
        """0 and counts the send if one may go now, else the seconds until one may."""
        self._sent = [t for t in self._sent if now - t < 60.0]
        if len(self._sent) < self.per_minute:
            self._sent.append(now)
            return 0.0
        return 60.0 - (now - self._sent[0])


def check_url(field: str, url: str, hosts: tuple[str, ...], allow_custom: bool) -> str:
    """`url` if it is https on one of the vendor's `hosts` (or anything with `allow_custom`), else ValueError."""
    parsed = httpx.URL(url)
    if allow_custom and parsed.scheme in ("http", "https") and parsed.host:
        return url
    if parsed.scheme != "https" or parsed.host not in hosts:
        raise ValueError(f"{field}: must be an https URL on {' or '.join(hosts)}, got host {parsed.host!r}")
    return url


def fit(body: str, limits: Limits, marker: str = "\n…") -> list[str]:
    """`body` as parts that each fit `limits.max_body_bytes` in UTF-8, split at line ends when possible."""
    cap = limits.max_body_bytes
    if len(body.encode()) <= cap:
        return [body]
    if limits.overflow is Overflow.TRUNCATE:
        room = cap - len(marker.encode())
        return [body.encode()[:room].decode(errors="ignore") + marker]
    parts: list[str] = []
    current = ""
    for line in body.splitlines(keepends=True):
        while len(line.encode()) > cap:  # a single line longer than the cap: hard cut
            head = line.encode()[:cap].decode(errors="ignore")
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
            line = line[len(head) :]
        if len((current + line).encode()) > cap:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return parts


class _UrlRedaction(logging.Filter):
    """httpx logs every request's URL at INFO, and a robot's URL is its credential (DingTalk's
    access_token, WeCom's key, Lark's hook token): only the scheme and host reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"{a.scheme}://{a.netloc.decode()}/..." if isinstance(a, httpx.URL) else a
                for a in record.args
            )
        return True


_REDACTION = _UrlRedaction()


def http_client() -> httpx.AsyncClient:
    """The one HTTP client the channels share: explicit timeouts, no redirects (a robot never redirects)."""
    logging.getLogger("httpx").addFilter(_REDACTION)  # once: a logger keeps a filter only once
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)


async def post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | Retryable:
    """POST, turning transport errors and 429/5xx into `Retryable` (the network, not the vendor, failed)."""
    try:
        response = await client.post(url, **kwargs)
    except httpx.TimeoutException as exc:
        return Retryable("timeout", type(exc).__name__)
    except httpx.TransportError as exc:
        return Retryable("network", type(exc).__name__)
    if response.status_code == 429 or response.status_code >= 500:
        return Retryable(f"http {response.status_code}", response.text[:200], _retry_after(response),
                         throttled=response.status_code == 429)  # fmt: skip
    return response


def vendor_json(response: httpx.Response) -> dict[str, Any] | Failed:
    """The vendor's JSON answer, or a permanent failure naming what came back instead."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return Failed(f"http {response.status_code}", "answer is not JSON")
    if not isinstance(body, dict):
        return Failed(f"http {response.status_code}", "answer is not a JSON object")
    return body


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def coded_answer(
    response: httpx.Response, code_key: str, message_key: str, retryable: dict[int, float],
    throttled: Collection[int] = (),
) -> Delivery:  # fmt: skip
    """Interpret a robot's `{code, message}` answer: 0 is delivered, `retryable` codes wait (the
    `throttled` ones without spending an attempt), the rest fail."""
    body = vendor_json(response)
    if isinstance(body, Failed):
        return body
    code = body.get(code_key)
    message = str(body.get(message_key, ""))
    if code == 0:
        return Delivered()
    if isinstance(code, int) and code in retryable:
        return Retryable(str(code), message, retryable[code], throttled=code in throttled)
    return Failed(str(code), message or f"HTTP {response.status_code} without {code_key} 0")
