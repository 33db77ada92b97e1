"""The prober's metrics, defined in one place: what the chart's alert rules and dashboard read.

OpenTelemetry name -> Prometheus name (the Collector's exporter, files/otel-collector.yaml):
- `certwatch.probes`: probes recorded -> `certwatch_probes_total`
- `certwatch.probe.duration`: a whole probe, ms -> `certwatch_probe_duration_milliseconds`
- `certwatch.probe.phase.duration` {phase: dns | connect | tls_handshake}, ms, per address
  -> `certwatch_probe_phase_duration_milliseconds`
- `certwatch.probe.outcomes` {outcome: ok | partial | dns | an `ERR_*` kind}
  -> `certwatch_probe_outcomes_total`; the probe error-rate alert divides by outcome.
Attributes are small closed sets: never a host or a domain (a million series is no metric).
"""

from __future__ import annotations

from certwatch.platform import telemetry
from certwatch.rules.facts import PHASE_DONE, ProbeResult

DNS = {"phase": "dns"}
CONNECT = {"phase": "connect"}
HANDSHAKE = {"phase": "tls_handshake"}


def outcome(result: ProbeResult) -> str:
    """`ok` when every address completed the handshake, `partial` when some did, else why the
    first address failed (`dns` when the name did not resolve). Pure."""
    if result.dns_error is not None or not result.endpoints:
        return "dns"
    done = sum(e.phase == PHASE_DONE for e in result.endpoints)
    if done == len(result.endpoints):
        return "ok"
    if done:
        return "partial"
    return result.endpoints[0].error_kind or result.endpoints[0].phase


class ProbeMetrics:
    def __init__(self) -> None:
        self.probes = telemetry.counter("certwatch.probes", description="probes recorded")
        self._duration = telemetry.histogram("certwatch.probe.duration", description="a whole probe")
        self._phase = telemetry.histogram(
            "certwatch.probe.phase.duration", description="DNS, TCP connect, TLS handshake (per address)"
        )
        self._outcomes = telemetry.counter("certwatch.probe.outcomes", description="probes by outcome")

    def record(self, result: ProbeResult, elapsed_ms: float) -> None:
        self._duration.record(elapsed_ms)
        self._outcomes.add(1, {"outcome": outcome(result)})
        if result.dns_ms is not None:
            self._phase.record(result.dns_ms, DNS)
        for e in result.endpoints:
            if e.connect_ms is not None:
                self._phase.record(e.connect_ms, CONNECT)
            if e.handshake_ms is not None:
                self._phase.record(e.handshake_ms, HANDSHAKE)
