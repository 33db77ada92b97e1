"""An OTLP/gRPC receiver for tests: what a Collector would get, kept in memory.

Built on the `opentelemetry-proto` stubs and grpcio (no Collector runs here): the trace and
metrics services' `Export` store each request and answer success, as a Collector does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as mpb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as mgrpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tpb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tgrpc


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    metrics: dict[str, set[str]] = field(default_factory=dict)  # metric name -> services that sent it
    # metric name -> the attribute sets of its data points, each as a frozenset of (key, value)
    points: dict[str, set[frozenset[tuple[str, str]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[list[Span], dict[str, set[str]]]:
        with self.lock:
            return list(self.spans), {k: set(v) for k, v in self.metrics.items()}

    def attributes(self, metric: str) -> list[dict[str, str]]:
        """The attributes of every data point of `metric` received so far."""
        with self.lock:
            return [dict(a) for a in self.points.get(metric, ())]


def _service(resource: Any) -> str:
    for attribute in resource.attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""


class _Traces(tgrpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(self, request: tpb.ExportTraceServiceRequest, context: Any) -> tpb.ExportTraceServiceResponse:
        with self._received.lock:
            for rs in request.resource_spans:
                service = _service(rs.resource)
                for ss in rs.scope_spans:
                    self._received.spans += [
                        Span(service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex())
                        for s in ss.spans
                    ]
        return tpb.ExportTraceServiceResponse()


class _Metrics(mgrpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(
        self, request: mpb.ExportMetricsServiceRequest, context: Any
    ) -> mpb.ExportMetricsServiceResponse:
        with self._received.lock:
            for rm in request.resource_metrics:
                service = _service(rm.resource)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        self._received.metrics.setdefault(metric.name, set()).add(service)
                        kind = metric.WhichOneof("data")
                        points = self._received.points.setdefault(metric.name, set())
                        for point in getattr(metric, kind).data_points if kind else ():
                            points.add(frozenset((a.key, a.value.string_value) for a in point.attributes))
        return mpb.ExportMetricsServiceResponse()


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    """Yields (the endpoint to export to, what arrived)."""
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    tgrpc.add_TraceServiceServicer_to_server(_Traces(received), server)
    mgrpc.add_MetricsServiceServicer_to_server(_Metrics(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=1).wait(5)
