"""Runs a service's gRPC server the same way everywhere: health and reflection,
request ids, structured access logs, metrics, deadlines and graceful shutdown."""

import asyncio
import hmac
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import logs, metrics, tracing
from services.common.config import ServiceSettings
from services.common.readiness import Probe

logger = logging.getLogger(__name__)
_QUIET_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
INTERNAL_TOKEN_HEADER = "x-vizsearch-internal-token"


class _Unparsable:
    """A request whose bytes are not a valid message (say, a string field that is not UTF-8)."""

    def __init__(self, error: Exception):
        self.error = error


def _lenient(deserialize):
    """gRPC answers a request its deserializer rejects with INTERNAL; this one is passed on,
    and refused as INVALID_ARGUMENT, naming the problem."""
    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError, or a bad string
            return _Unparsable(error)

    return parse


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Per call: takes or mints the request id, refuses calls whose deadline has
    passed or whose request does not parse, and records one access-log line and
    the RPC metrics."""

    def __init__(self, service: str, internal_token: str = ""):
        self.service = service
        self.internal_token = internal_token.encode()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(_QUIET_PREFIXES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        rid = metadata.get(logs.REQUEST_ID_HEADER) or logs.new_request_id()
        inner = handler.unary_unary
        name = method.rsplit("/", 1)[-1]

        async def observed(request, context: grpc.aio.ServicerContext):
            token = logs.request_id.set(rid)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            metrics.RPC_IN_FLIGHT.labels(self.service).inc()
            try:
                await context.send_initial_metadata(((logs.REQUEST_ID_HEADER, rid),))
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call started")
                if self.internal_token and not hmac.compare_digest(
                        metadata.get(INTERNAL_TOKEN_HEADER, "").encode(), self.internal_token):
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                        "missing or wrong internal token: only vizsearch's own services call this")
                if isinstance(request, _Unparsable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                        f"the request is not a valid {name} message: {request.error}")
                return await inner(request, context)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                if code is grpc.StatusCode.UNKNOWN:
                    logger.exception("unhandled error in %s", method)
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.RPC_IN_FLIGHT.labels(self.service).dec()
                metrics.RPC_REQUESTS.labels(self.service, name, code.name).inc()
                metrics.RPC_LATENCY.labels(self.service, name).observe(elapsed)
                logs.log(logger, logging.INFO, "rpc", method=name, code=code.name, ms=round(elapsed * 1000, 2))
                logs.request_id.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


async def serve(
    service: str,
    settings: ServiceSettings,
    register: Callable[[grpc.aio.Server], Sequence[str]],
    ready: Awaitable[None] | None = None,
    on_stop: Callable[[], object] | None = None,
    probe: Probe | None = None,
) -> None:
    """Serves until SIGTERM or SIGINT. `register` adds the servicers and returns
    their full service names (for health and reflection). Health reports
    NOT_SERVING until `ready` (say, waiting for a backend) completes, and then
    whenever `probe` names a backend that does not answer."""
    server = grpc.aio.server(
        # The gateway's public door authenticates API keys instead.
        interceptors=[*tracing.server_interceptors(),
                      ObservabilityInterceptor(service, "" if service == "gateway" else settings.internal_token)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    names = list(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"cannot listen on {address}")
    metrics.serve_metrics(settings.host, settings.metrics_port)
    await server.start()
    logs.log(logger, logging.INFO, "listening", address=address, metrics_port=settings.metrics_port)

    async def set_status(status) -> None:
        for name in ("", *names):
            await health_servicer.set(name, status)

    async def report_serving():
        await set_status(health_pb2.HealthCheckResponse.NOT_SERVING)
        if ready is not None:
            await ready
        serving = None
        while True:
            try:
                down = await probe() if probe is not None else []
            except Exception as error:  # noqa: BLE001 - a probe that fails says so
                down = [f"probe failed: {error}"]
            if serving is None or serving != (not down):
                serving = not down
                await set_status(health_pb2.HealthCheckResponse.SERVING if serving
                                 else health_pb2.HealthCheckResponse.NOT_SERVING)
                if serving:
                    logs.log(logger, logging.INFO, "serving", address=address)
                else:
                    logs.log(logger, logging.WARNING, "not serving: backends down", down=down)
            if probe is None:
                return
            await asyncio.sleep(settings.health_probe_interval_s)

    readiness = asyncio.create_task(report_serving())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    readiness.cancel()
    logs.log(logger, logging.INFO, "stopping", grace_s=settings.shutdown_grace_s)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_s)
    if on_stop is not None:
        result = on_stop()
        if asyncio.iscoroutine(result):
            await result
    tracing.shutdown()
