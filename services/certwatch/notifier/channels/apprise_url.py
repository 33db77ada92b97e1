"""Every other service people page through (Slack, Teams, Telegram, ntfy, Matrix, ...): an Apprise URL.

Apprise is synchronous (requests), so each send runs in a worker thread. It answers only True or
False, so a refusal cannot be told from an outage: every failure is retryable, and the backoff's
attempt limit ends it. The seed's own channels stay first-class modules for that reason.
"""

from __future__ import annotations

import asyncio
import logging
import warnings

from certwatch.notifier.channels.base import Delivered, Delivery, Limits, Message, Overflow, Retryable, fit

# Apprise 2.2.0's email plugin imports `imghdr` (deprecated since Python 3.11) when plugins load,
# lazily on first use: load them here, once, with that one warning silenced.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    import apprise
    from apprise.manager_plugins import NotificationManager

    NotificationManager().load_modules()  # type: ignore[no-untyped-call]

# Apprise logs each request's URL at DEBUG (a Telegram bot token, a Slack webhook, ...), and so
# does urllib3 under requests: an Apprise URL is a credential, so neither logs below WARNING.
for _name in ("apprise", "urllib3"):
    logging.getLogger(_name).setLevel(max(logging.WARNING, logging.getLogger(_name).level))


def check(url: str) -> str:
    """`url` if Apprise has a service for it, else ValueError naming the field."""
    if not apprise.Apprise().add(url):
        raise ValueError("apprise_url: not a URL of a service Apprise supports (see the Apprise wiki)")
    return url


class AppriseUrl:
    name = "apprise"
    limits = Limits(max_body_bytes=32_000, per_minute=60, overflow=Overflow.TRUNCATE)

    def __init__(self, url: str) -> None:
        self._url = check(url)

    def _notify(self, title: str, body: str) -> bool:
        sender = apprise.Apprise()
        sender.add(self._url)
        return bool(sender.notify(title=title, body=body, body_format=apprise.NotifyFormat.MARKDOWN))

    async def send(self, message: Message) -> Delivery:
        body = fit(message.markdown or message.text, self.limits)[0]
        if await asyncio.to_thread(self._notify, message.subject, body):
            return Delivered()
        return Retryable("apprise", "the service did not accept the message (Apprise tells no more)")
