"""What became of each alert, appended by the notifier on `notification-<delivery key>` streams.

One stream per idempotency key (event, domain, contact, channel, incident), and event ids
derived from the key, so a delivery's outcome is recorded once however often it is retried
or redelivered. Read by the console and reports: the delivery log per domain and contact.
No secrets and no addresses travel here: a contact is named by id, a channel by its name.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from certwatch.contracts.payload import Category, Payload

STREAM = Category("notification")
stream_id = STREAM.stream_id

NOTIFICATION_SENT = "NotificationSent"
NOTIFICATION_FAILED = "NotificationFailed"
NOTIFICATION_EVENTS = (NOTIFICATION_SENT, NOTIFICATION_FAILED)

CHANNELS = ("email", "sms", "dingtalk", "wecom", "lark", "webhook", "apprise")


class NotificationOutcome(Payload, frozen=True, kw_only=True):
    """`event`: the notification event (`expired`, `recovered`, `digest`, ...); `domain_id` is
    `*` for a digest, which lists several domains; `incident` is the domain's incident number
    (the local day for a digest)."""

    key: str
    event: str
    domain_id: str
    account_id: str
    contact_id: str
    channel: str
    incident: str
    attempts: int
    at: datetime
    detail: str = ""


class NotificationSent(NotificationOutcome, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = NOTIFICATION_SENT


class NotificationFailed(NotificationOutcome, frozen=True, kw_only=True):
    """A delivery that finally failed: refused by the vendor, out of retries, or interrupted
    mid-send (the outcome unknown, so not sent again rather than possibly sent twice)."""

    TYPE: ClassVar[str] = NOTIFICATION_FAILED
