"""The gRPC server every service runs: auth, tracing and error mapping in one interceptor,
health checking that reflects real dependencies, reflection, graceful stop."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import psycopg
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from certwatch.platform import auth, db, error_codes, errors, telemetry, wire

log = logging.getLogger(__name__)

_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _decode(deserialize: Callable[[bytes], Any] | None, raw: bytes) -> Any:
    """The request message, or InvalidArgument naming what is wrong with its bytes (the
    runtime's own failure would reach the client as UNKNOWN, saying nothing)."""
    if deserialize is None:
        return raw
    try:
        return deserialize(raw)
    except DecodeError:
        message_class = getattr(deserialize, "__self__", None)
        descriptor = getattr(message_class, "DESCRIPTOR", None)
        if descriptor is None:
            raise errors.InvalidArgument([("request", "not a valid message")]) from None
        raise errors.InvalidArgument([wire.explain(descriptor, raw)]) from None


def _status_details(exc: Exception, code: grpc.StatusCode) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=getattr(code_pb2, code.name, code_pb2.UNKNOWN), message=str(exc))
    if isinstance(exc, errors.InvalidArgument):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in exc.violations
            ]
        )
        status.details.add().Pack(bad)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class _Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, verifier: auth.KeyVerifier | None) -> None:
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(_PUBLIC_PREFIXES):
            return handler
        deserialize = handler.request_deserializer
        if handler.unary_stream is not None:
            streamed = handler.unary_stream

            async def stream(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                async with self._served(method, context):
                    async for message in streamed(_decode(deserialize, raw), context):
                        yield message

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=None, response_serializer=handler.response_serializer
            )
        if handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def call(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._served(method, context):
                return await inner(_decode(deserialize, raw), context)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=None,  # bytes: decoded in `call`, so bad bytes are INVALID_ARGUMENT
            response_serializer=handler.response_serializer,
        )

    @contextlib.asynccontextmanager
    async def _served(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        """Around every call, unary or streamed: trace, authenticate, map errors to codes."""
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        parent = telemetry.context_from(metadata)
        with (
            telemetry.tracer().start_as_current_span(method, context=parent, kind=telemetry.SERVER),
            db.failing_fast(),
        ):
            token = None
            try:
                if self._verifier is not None:
                    token = auth.bind(await self._verifier.verify(metadata.get("authorization")))
                yield
            except psycopg.OperationalError as exc:  # lost connection, pool timeout
                log.warning("database unavailable in %s: %s", method, exc)
                unavailable = errors.TransientStoreError("the database is unavailable; retry shortly")
                await self._abort(context, unavailable)
            except error_codes.MAPPED as exc:
                await self._abort(context, exc)
            except grpc.aio.AbortError:
                raise
            except Exception:
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; see server logs")
            finally:
                if token is not None:
                    auth.unbind(token)

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
        mapped = error_codes.answer(exc)
        assert mapped is not None  # only mapped errors are caught
        code = grpc.StatusCode[mapped.code]
        await context.abort(code, str(exc), trailing_metadata=_status_details(exc, code))


Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any, str]


class GrpcServer:
    """One aio server with health and reflection; `set_serving` follows dependency checks."""

    def __init__(self, registrations: Sequence[Registration], verifier: auth.KeyVerifier | None) -> None:
        self.server = grpc.aio.server(
            interceptors=[_Interceptor(verifier)],
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [reflection.SERVICE_NAME, health.SERVICE_NAME]
        self._services = []
        for add, servicer, full_name in registrations:
            add(servicer, self.server)
            names.append(full_name)
            self._services.append(full_name)
        reflection.enable_server_reflection(names, self.server)
        self.port = 0

    def bind(self, address: str, *, tls: tuple[bytes, bytes, bytes | None] | None = None) -> int:
        """Listen on `address`; with `tls` (cert, key, client CA) serve TLS, and mutual TLS
        when a client CA is given."""
        if tls is None:
            self.port = self.server.add_insecure_port(address)
        else:
            cert, key, client_ca = tls
            credentials = grpc.ssl_server_credentials(
                [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
            )
            self.port = self.server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        return self.port

    async def start(self) -> None:
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._services]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)  # in-flight calls get `grace` seconds to finish
