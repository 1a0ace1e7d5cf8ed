"""Channels from one vizsearch service to another.

Calls carry the current request id, and the channel balances calls round robin
over every address the target name resolves to (a headless Service in
Kubernetes resolves to every pod), instead of pinning one HTTP/2 connection.
"""

import json

import grpc

from services.common import logs
from services.common.grpc_server import MAX_MESSAGE_BYTES

_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


class _RequestIdInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        rid = logs.request_id.get()
        if rid:
            metadata = list(client_call_details.metadata or ()) + [(logs.REQUEST_ID_HEADER, rid)]
            client_call_details = client_call_details._replace(metadata=metadata)
        return await continuation(client_call_details, request)


_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
]


def channel(address: str) -> grpc.aio.Channel:
    """An insecure channel to `address` (host:port); in-cluster traffic stays inside the mesh."""
    return grpc.aio.insecure_channel(f"dns:///{address}", interceptors=[_RequestIdInterceptor()], options=_OPTIONS)


def blocking_channel(address: str) -> grpc.Channel:
    """The same, for threads that block (the Celery workers)."""
    return grpc.insecure_channel(f"dns:///{address}", options=_OPTIONS)
