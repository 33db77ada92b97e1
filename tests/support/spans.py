"""Finished spans of this test process, kept in memory (telemetry's providers are set once per process)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certwatch.platform import telemetry


@contextlib.contextmanager
def recorded_spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """Every span finished while inside goes to `exporter` as well."""
    telemetry.setup("test", otlp_endpoint=None)
    processor = SimpleSpanProcessor(exporter)
    telemetry.add_span_processor(processor)
    try:
        yield exporter
    finally:
        processor.shutdown()
