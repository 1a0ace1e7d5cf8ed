"""The internal token: every service but the gateway's public door refuses gRPC calls
without it; channels made with it carry it; health checks (the kubelet's probes) need none."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import grpc_client
from services.common.grpc_server import ObservabilityInterceptor

TOKEN = "internal-secret"


def echo_handler():
    async def echo(request: bytes, context) -> bytes:
        return request

    return grpc.method_handlers_generic_handler("test.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo, request_deserializer=bytes, response_serializer=bytes)})


async def calls(token: str, server_token: str) -> tuple[object, bool]:
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor("query", server_token)])
    server.add_generic_rpc_handlers([echo_handler()])
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc_client.channel(f"127.0.0.1:{port}", token) as channel:
            echo = channel.unary_unary("/test.Echo/Echo", request_serializer=bytes, response_deserializer=bytes)
            try:
                reply = await echo(b"hello", timeout=5)
            except grpc.aio.AioRpcError as error:
                reply = error
            status = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            return reply, status.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(0)


@pytest.mark.parametrize("token, server_token, answered", [
    (TOKEN, TOKEN, True), ("", TOKEN, False), ("wrong", TOKEN, False), ("", "", True), (TOKEN, "", True)])
def test_calls_need_the_internal_token_and_health_checks_do_not(token, server_token, answered):
    reply, healthy = asyncio.run(calls(token, server_token))
    assert healthy, "the kubelet's gRPC probe sends no token"
    if answered:
        assert reply == b"hello"
    else:
        assert reply.code() == grpc.StatusCode.UNAUTHENTICATED and "internal token" in reply.details()


def test_a_blocking_channel_carries_the_token_too():
    async def serve_then_call():
        server = grpc.aio.server(interceptors=[ObservabilityInterceptor("embedder", TOKEN)])
        server.add_generic_rpc_handlers([echo_handler()])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            def call():
                with grpc_client.blocking_channel(f"127.0.0.1:{port}", TOKEN) as channel:
                    echo = channel.unary_unary("/test.Echo/Echo", request_serializer=bytes,
                                               response_deserializer=bytes)
                    return echo(b"ping", timeout=5)

            return await asyncio.to_thread(call)
        finally:
            await server.stop(0)

    assert asyncio.run(serve_then_call()) == b"ping"
