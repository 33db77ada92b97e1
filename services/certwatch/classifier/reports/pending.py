"""Report sections whose facts belong to services whose contract events are not in this
build yet. Each report prints the section with this note rather than leaving it out, so a
reader sees what is missing; when `contracts/notifications.py` (notifier: alerts sent) and
`contracts/hosting.py` (hosting: renewals done) land, the section reads their events here."""

from __future__ import annotations

ALERTS_SENT = (
    "Not available in this build: alerts are recorded by the notifier, whose contract events"
    " (contracts/notifications.py) the reports do not read yet."
)
HOSTING_RENEWALS = (
    "Not available in this build: renewals are recorded by hosting, whose contract events"
    " (contracts/hosting.py) the reports do not read yet."
)
