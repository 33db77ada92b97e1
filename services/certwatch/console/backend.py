"""The services the console calls, over the same gRPC APIs as the CLI: never a second
implementation of their rules. gRPC failures become HTTP answers in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2

from certwatch.platform.config import Settings
from certwatch.v1 import (
    classifier_pb2_grpc,
    hosting_pb2_grpc,
    inventory_pb2_grpc,
    notifier_pb2_grpc,
    ops_pb2_grpc,
    reports_pb2_grpc,
)

TIMEOUT_S = 10.0


class Unavailable(Exception):
    """A service this console was not configured to reach (its page answers 503)."""


@dataclass
class Backend:
    channels: dict[str, grpc.aio.Channel]
    inventory: inventory_pb2_grpc.InventoryStub
    classifier: classifier_pb2_grpc.ClassifierStub
    reports: reports_pb2_grpc.ReportsStub

    def ops(self, service: str) -> ops_pb2_grpc.OpsStub:
        return ops_pb2_grpc.OpsStub(self.channels[service])

    def _channel(self, service: str) -> grpc.aio.Channel:
        channel = self.channels.get(service)
        if channel is None:
            raise Unavailable(service)
        return channel

    @property
    def notifier(self) -> notifier_pb2_grpc.NotifierStub:
        return notifier_pb2_grpc.NotifierStub(self._channel("notifier"))

    @property
    def hosting(self) -> hosting_pb2_grpc.HostingStub:
        return hosting_pb2_grpc.HostingStub(self._channel("hosting"))

    @property
    def services(self) -> list[str]:
        return sorted(self.channels)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


def connect(settings: Settings, grpc_services: Sequence[str]) -> Backend:
    """Channels to every gRPC service (`grpc_services`: the catalogue's, less the console)."""
    channels = {name: grpc.aio.insecure_channel(settings.grpc_target(name)) for name in grpc_services}
    return Backend(
        channels,
        inventory_pb2_grpc.InventoryStub(channels["inventory"]),
        classifier_pb2_grpc.ClassifierStub(channels["classifier"]),
        reports_pb2_grpc.ReportsStub(channels["classifier"]),
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A gRPC error as the console shows it."""

    http_status: int
    message: str
    fields: tuple[tuple[str, str], ...] = ()


_STATUS = {
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}  # fmt: skip


def refusal(exc: grpc.aio.AioRpcError) -> Refusal:
    fields: list[tuple[str, str]] = []
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    fields += [(v.field, v.description) for v in bad.field_violations]
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE or code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Refusal(503, "a certwatch service is unavailable; retry shortly")
    return Refusal(_STATUS.get(code, 500), exc.details() or code.name, tuple(fields))
