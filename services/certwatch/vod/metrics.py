"""The VOD API's metrics, defined in one place (the chart's alert rules and dashboard read them).

- `certwatch.vod.requests` {action, code, status} -> `certwatch_vod_requests_total`: every
  answered HTTP request. `code` is `Success` or the error's `Code`; `action` is one this API
  serves or `other`, so a client sending made-up actions cannot grow the series without bound.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from certwatch.platform import telemetry


def action_of(params: Mapping[str, str], header: str | None, known: Container[str]) -> str:
    """The request's `Action` as a metric attribute. Pure."""
    named = params.get("Action") or header or ""
    return named if named in known else "other"


def record_request(action: str, code: str, status: int) -> None:
    telemetry.counter("certwatch.vod.requests", description="VOD API requests answered").add(
        1, {"action": action, "code": code, "status": str(status)}
    )
