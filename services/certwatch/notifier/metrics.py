"""The notifier's metrics, defined in one place (the chart's alert rules and dashboard read them).

- `certwatch.notifications` {channel, outcome: sent | retrying | failed}: every attempt whose
  outcome was recorded -> `certwatch_notifications_total`. Both attributes are closed sets
  (the channel kinds, `delivery.Outcome`); never a contact or an address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from certwatch.platform import telemetry


def record_deliveries(outcomes: Iterable[tuple[str, str]]) -> None:
    """`outcomes`: (channel, outcome) of each attempt, recorded after its commit."""
    attempts = telemetry.counter("certwatch.notifications", description="delivery attempts")
    for (channel, outcome), n in Counter(outcomes).items():
        attempts.add(n, {"channel": channel, "outcome": outcome})
