"""The metrics recorded in the test process (in-process stacks), read back by name.

`tests/conftest.py` installs the SDK's meter provider once per session with this reader, as
every certwatch process installs one (`telemetry.setup`), so in-process tests can check what
the services' instruments recorded.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

READER = InMemoryMetricReader()


def totals(name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The current value of each series of `name` (a counter's sum, a gauge's value), by attributes."""
    data = READER.get_metrics_data()
    found: dict[frozenset[tuple[str, str]], float] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    key = frozenset((k, str(v)) for k, v in (point.attributes or {}).items())
                    found[key] = found.get(key, 0.0) + float(getattr(point, "value", 0))
    return found
