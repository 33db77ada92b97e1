"""The Prober gRPC API: an ad hoc probe and its verdict, recorded nowhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct

from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument
from certwatch.prober.options import ProbeOptions
from certwatch.prober.tls_probe import probe
from certwatch.rules import targets as validation
from certwatch.rules.classify import classify
from certwatch.v1 import prober_pb2 as pb
from certwatch.v1 import prober_pb2_grpc


def _struct(value: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(value)
    return out


class ProberApi(prober_pb2_grpc.ProberServicer):
    def __init__(self, options: ProbeOptions) -> None:
        self._options = options

    async def Probe(self, request: pb.ProbeRequest, context: Any) -> pb.ProbeResponse:
        auth.current()
        try:
            target = validation.normalize_target(request.host, port=request.port or None)
        except validation.ValidationError as exc:
            raise InvalidArgument([(v.field if v.field != "domain" else "host", v.description)
                                   for v in exc.violations]) from exc  # fmt: skip
        result = await probe(target.host, target.port, options=self._options)
        verdict = classify(result, first_check=False, now=datetime.now(UTC))
        return pb.ProbeResponse(
            status=verdict.status.value,
            primary_cause=verdict.primary_cause.value if verdict.primary_cause else "",
            causes=[c.value for c in verdict.causes],
            facts=_struct(result.to_dict()),
            verdict=_struct(verdict.to_dict()),
        )


def registration(api: ProberApi) -> tuple[Any, Any, str]:
    return (prober_pb2_grpc.add_ProberServicer_to_server, api, "certwatch.v1.Prober")
