"""OpenTelemetry traces and metrics, and W3C trace context across gRPC and NATS.

Providers are real SDK providers in every process, so spans carry ids and context
propagates even with no collector; an OTLP exporter is added when an endpoint is set.
With nothing to take them (no endpoint, no processor), spans are not recorded, only their
ids made, and metrics have no provider: recording what nobody reads cost every event and
every probe its attributes, events and ends (~12 us a span, ~10 a histogram point).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.metrics import _Gauge as Gauge  # the synchronous gauge (API 1.45 exports it so)
from opentelemetry.propagators.textmap import DefaultGetter, DefaultSetter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_configured = False


class _WhileTaken(Sampler):
    """Parent-based, always on, once a span processor takes spans; until then no span is
    recorded (its trace id still follows the parent's, so events keep their trace)."""

    def __init__(self) -> None:
        self.taken = False
        self._on = ParentBased(ALWAYS_ON)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return (self._on if self.taken else ALWAYS_OFF).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "ParentBased{AlwaysOn} while spans are taken, else AlwaysOff"


_SAMPLER = _WhileTaken()


def setup(
    service: str,
    *,
    otlp_endpoint: str | None,
    span_processors: tuple[SpanProcessor, ...] = (),
    metric_readers: tuple[MetricReader, ...] = (),
) -> None:
    """Install providers once per process (tests may pass in-memory processors/readers)."""
    global _configured
    if _configured:
        return
    resource = Resource.create({"service.name": f"certwatch-{service}", "service.namespace": "certwatch"})
    tracer_provider = TracerProvider(resource=resource, sampler=_SAMPLER)
    readers = list(metric_readers)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint)))
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    _SAMPLER.taken = bool(otlp_endpoint or span_processors)
    trace.set_tracer_provider(tracer_provider)
    if readers:  # else the API's own no-op meters: nothing would read what they record
        otel_metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    _configured = True


def recording() -> bool:
    """Whether spans are recorded: hot paths skip the spans that would only carry a context
    on (nothing reads them), and pass the trace they were given through as it is."""
    return _SAMPLER.taken


def tracer() -> trace.Tracer:
    return trace.get_tracer("certwatch")


def metrics() -> otel_metrics.Meter:
    return otel_metrics.get_meter("certwatch")


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the active span, to store in event metadata."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, setter=DefaultSetter())  # type: ignore[misc]
    return carrier.get("traceparent")


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """A context whose parent is the trace in `carrier` (gRPC metadata, NATS headers)."""
    if not carrier:
        return otel_context.get_current()
    return _PROPAGATOR.extract(dict(carrier), getter=DefaultGetter())


def inject(carrier: dict[str, str]) -> dict[str, str]:
    _PROPAGATOR.inject(carrier, setter=DefaultSetter())  # type: ignore[misc]
    return carrier


@functools.cache
def counter(name: str, unit: str = "1", description: str = "") -> otel_metrics.Counter:
    return metrics().create_counter(name, unit=unit, description=description)


@functools.cache
def histogram(name: str, unit: str = "ms", description: str = "") -> otel_metrics.Histogram:
    return metrics().create_histogram(name, unit=unit, description=description)


@functools.cache
def gauge(name: str, unit: str = "1", description: str = "") -> Gauge:
    """A synchronous gauge (a value set when sampled), e.g. domains by days to expiry."""
    return metrics().create_gauge(name, unit=unit, description=description)


Series = Callable[[], Iterable[tuple[float, Mapping[str, str]]]]


class Observed:
    """An observable instrument that reports, at each collection, exactly the series
    `publish()` last gave. A gauge's series left out is gone (a synchronous gauge exports its
    last value for ever), so "the N soonest" stays N series as its members change. A
    counter's series are running totals: adding to a number costs the hot path far less
    than a synchronous counter's `add()` (about 9 µs each)."""

    def __init__(self, kind: str, name: str, unit: str, description: str) -> None:
        self._series: Series = tuple
        create = (
            metrics().create_observable_counter if kind == "counter" else metrics().create_observable_gauge
        )
        create(name, callbacks=[self._observe], unit=unit, description=description)

    def publish(self, series: Series) -> None:
        """`series` is called at each collection (in the exporter's thread): (value, attributes) each."""
        self._series = series

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(attributes)) for value, attributes in self._series()]


@functools.cache
def observed_gauge(name: str, unit: str = "1", description: str = "") -> Observed:
    """One per name and process: the SDK keeps the callbacks of a name's first registration."""
    return Observed("gauge", name, unit, description)


@functools.cache
def observed_counter(name: str, unit: str = "1", description: str = "") -> Observed:
    """A monotonic counter whose totals the process keeps itself (one per name, as above)."""
    return Observed("counter", name, unit, description)


SERVER = trace.SpanKind.SERVER
CLIENT = trace.SpanKind.CLIENT


def add_span_processor(processor: SpanProcessor) -> None:
    """Attach another processor (tests use an in-memory exporter) to the installed provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        raise RuntimeError("telemetry.setup() has not run in this process")
    provider.add_span_processor(processor)
    _SAMPLER.taken = True
