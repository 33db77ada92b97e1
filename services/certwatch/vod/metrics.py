"""The VOD API's metrics, defined in one place (the chart's alert rules and dashboard read them).

- `certwatch.vod.requests` {action, code, status} -> `certwatch_vod_requests_total`: every
  answered HTTP request. `code` is `Success` or the error's `Code`; `action` is one this API
  serves or `other`, so a client sending made-up actions cannot grow the series without bound.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Iterable, Mapping

from certwatch.platform import telemetry

# Answered requests by (action, code, status), counted here and read by the SDK at each
# collection (an observed counter): a synchronous Counter.add cost ~8 us a request,
# 6% of a signed request's CPU in bench/vod_api.py.
_ANSWERED: dict[tuple[str, str, int], int] = {}


def action_of(params: Mapping[str, str], header: str | None, known: Container[str]) -> str:
    """The request's `Action` as a metric attribute. Pure."""
    named = params.get("Action") or header or ""
    return named if named in known else "other"


def record_request(action: str, code: str, status: int) -> None:
    _requests()
    key = (action, code, status)
    _ANSWERED[key] = _ANSWERED.get(key, 0) + 1


def _series() -> Iterable[tuple[float, Mapping[str, str]]]:
    # dict() copies in one step under the GIL: the SDK calls this from its export thread.
    for (action, code, status), n in dict(_ANSWERED).items():
        yield n, {"action": action, "code": code, "status": str(status)}


@functools.cache  # created at the first request, once the process's providers are installed
def _requests() -> None:
    telemetry.observed_counter("certwatch.vod.requests", description="VOD API requests answered").publish(
        _series
    )
