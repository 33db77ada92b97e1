"""The statuses the domain list shows, apart from the view that sets them: the CLI's
`--status` choices read them without importing the projection machinery."""

from __future__ import annotations

from certwatch.rules.causes import Status

#: Every status the domain list shows: the classifier's, plus the ones the view sets itself.
LIST_STATUSES: tuple[str, ...] = ("NOT_ENABLED", *Status, "DISABLED", "SERVICE_ENDED")
