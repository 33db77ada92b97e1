"""The daily digest: one message per contact per day listing every affected domain, never one per domain.

Pure composition over plain data; which domains are affected, muted or acknowledged is decided by
the caller's projections, and `rules.decide(..., reminder=True)` filters each entry.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from certwatch.notifier.channels.base import Message
from certwatch.notifier.channels.sms import template_text
from certwatch.notifier.rules import Key, next_local

DEFAULT_HOUR = time(9, 0)


@dataclass(frozen=True, slots=True)
class Problem:
    """One affected domain as a digest line: where, why, how long is left, what to do."""

    domain_id: str
    domain: str
    port: int
    cause: str  # a classifier Cause value
    title: str  # the cause in words
    action: str  # the recommended action
    days_left: int | None = None


def local_day(now: datetime, tz: str) -> date:
    """The account's calendar day at `now`: the digest's idempotency 'incident'."""
    return now.astimezone(ZoneInfo(tz)).date()


def next_digest_at(now: datetime, tz: str, at: time = DEFAULT_HOUR) -> datetime:
    return next_local(now, at, tz)


def by_contact(
    problems: Iterable[Problem], contacts: Mapping[str, Sequence[str]]
) -> dict[str, list[Problem]]:
    """contact id -> that contact's problems (domain contacts from `contacts`), sorted by urgency."""
    out: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        for contact in contacts.get(p.domain_id, ()):
            out[contact].append(p)
    for items in out.values():
        items.sort(key=lambda p: (p.days_left if p.days_left is not None else 10**6, p.domain, p.port))
    return dict(out)


def digest_key(contact_id: str, channel: str, day: date) -> Key:
    return Key("digest", "*", contact_id, channel, day.isoformat())


def _days(p: Problem) -> str:
    if p.days_left is None:
        return ""
    return f", expired {-p.days_left} days ago" if p.days_left < 0 else f", {p.days_left} days left"


def compose(problems: Sequence[Problem], day: date, delivery_id: str = "") -> Message:
    """The digest message for one contact: every channel's rendition of the same lines."""
    n = len({p.domain_id for p in problems})
    subject = f"certwatch daily digest {day.isoformat()}: {n} domain{'s' if n != 1 else ''} need attention"
    lines = [f"{p.domain}:{p.port}: {p.title}{_days(p)}. {p.action}" for p in problems]
    text = subject + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
    markdown = f"### {subject}\n\n" + "\n".join(
        f"- **{p.domain}:{p.port}** {p.title}{_days(p)}. {p.action}" for p in problems
    )
    rows = "".join(
        f"<tr><td>{html.escape(p.domain)}:{p.port}</td><td>{html.escape(p.title)}</td>"
        f"<td>{'' if p.days_left is None else p.days_left}</td><td>{html.escape(p.action)}</td></tr>"
        for p in problems
    )
    page = (
        f"<h3>{html.escape(subject)}</h3><table><tr><th>Domain</th><th>Cause</th><th>Days left</th>"
        f"<th>Recommended action</th></tr>{rows}</table>"
    )
    latest = max((p.days_left for p in problems if p.cause == "ABOUT_TO_EXPIRE" and p.days_left is not None),
                  default=30)  # fmt: skip
    sms = template_text(Counter(p.cause for p in problems), days=max(latest, 0))
    data = {
        "day": day.isoformat(),
        "domains": [
            {
                "domain": p.domain,
                "port": p.port,
                "cause": p.cause,
                "days_left": p.days_left,
                "action": p.action,
            }
            for p in problems
        ],
    }
    return Message(subject, text, html=page, markdown=markdown, sms=sms, delivery_id=delivery_id, data=data)
