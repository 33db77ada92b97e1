"""The classifier's metrics, defined in one place (the chart's alert rules and dashboard read them).

- `certwatch.verdicts` {status, cause}: every probe classified, after its transaction commits
  -> `certwatch_verdicts_total`. `cause` is the primary cause (`none` for a SECURE verdict):
  both are closed sets (`rules.causes`), so the series stay few at any number of domains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from certwatch.platform import telemetry
from certwatch.rules.classify import Verdict


class VerdictMetrics:
    def __init__(self) -> None:
        self._verdicts = telemetry.counter("certwatch.verdicts", description="probes classified")

    def record(self, verdicts: Iterable[Verdict]) -> None:
        counts = Counter(
            (str(v.status), str(v.primary_cause) if v.primary_cause else "none") for v in verdicts
        )
        for (status, cause), n in counts.items():
            self._verdicts.add(n, {"status": status, "cause": cause})
