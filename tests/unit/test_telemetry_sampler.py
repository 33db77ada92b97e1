"""Spans are recorded only while something takes them; their trace ids follow the parent's."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from certwatch.platform import telemetry
from certwatch.platform.telemetry import _WhileTaken

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_no_span_is_recorded_until_a_processor_takes_them_and_the_trace_goes_on() -> None:
    sampler = _WhileTaken()
    tracer = TracerProvider(sampler=sampler).get_tracer("test")
    parent = telemetry.context_from({"traceparent": PARENT})
    with tracer.start_as_current_span("untaken", context=parent) as span:
        assert not span.is_recording()
        assert span.get_span_context().trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
        traceparent = telemetry.current_traceparent()
    assert traceparent is not None and traceparent.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    sampler.taken = True
    with tracer.start_as_current_span("taken", context=parent) as span:
        assert span.is_recording() and span.get_span_context().trace_flags.sampled
