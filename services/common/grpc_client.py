"""Channels from one vizsearch service to another.

Calls carry the current request id, and the channel balances calls round robin
over every address the target name resolves to (a headless Service in
Kubernetes resolves to every pod), instead of pinning one HTTP/2 connection.
"""

import json

import grpc

from services.common import logs, tracing
from services.common.grpc_server import INTERNAL_TOKEN_HEADER, MAX_MESSAGE_BYTES

_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


class _CallerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Every call carries the current request id, and the internal token when there is one."""

    def __init__(self, token: str):
        self.extra = [(INTERNAL_TOKEN_HEADER, token)] if token else []

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        rid = logs.request_id.get()
        extra = self.extra + ([(logs.REQUEST_ID_HEADER, rid)] if rid else [])
        if extra:
            metadata = list(client_call_details.metadata or ()) + extra
            client_call_details = client_call_details._replace(metadata=metadata)
        return await continuation(client_call_details, request)


class _TokenInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str):
        self.token = token

    def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = list(client_call_details.metadata or ()) + [(INTERNAL_TOKEN_HEADER, self.token)]
        return continuation(client_call_details._replace(metadata=metadata), request)


_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
]


def channel(address: str, token: str = "") -> grpc.aio.Channel:
    """An insecure channel to `address` (host:port); in-cluster traffic stays inside the
    cluster's network policies, and carries the internal token when one is set."""
    return grpc.aio.insecure_channel(f"dns:///{address}", interceptors=[*tracing.client_interceptors(),
                                     _CallerInterceptor(token)], options=_OPTIONS)


def blocking_channel(address: str, token: str = "") -> grpc.Channel:
    """The same, for threads that block (the Celery workers)."""
    plain = tracing.traced_blocking_channel(grpc.insecure_channel(f"dns:///{address}", options=_OPTIONS))
    return grpc.intercept_channel(plain, _TokenInterceptor(token)) if token else plain
