"""Runs the gateway: `python -m services.gateway` (configured by VIZSEARCH_* variables).

One process serves the public gRPC API and the HTTP API (FastAPI) side by side.
"""

import asyncio
import logging

import redis.asyncio as redis

from services.common import grpc_server, logs, tracing
from services.common.genproto.vizsearch.v1 import gateway_pb2, gateway_pb2_grpc
from services.common.http_server import EmbeddedHttpServer
from services.common.storage import ObjectStore
from services.gateway import http_api
from services.gateway.auth import InvalidKeys, KeyFile, is_loopback
from services.gateway.config import GatewaySettings
from services.gateway.core import Backends, Gateway
from services.gateway.ratelimit import RateLimiter
from services.gateway.servicer import GatewayServicer
from services.gateway.uploads import UploadLedger

logger = logging.getLogger("services.gateway")
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name


async def reload_keys(keys: KeyFile, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            if await asyncio.to_thread(keys.reload_if_changed):
                logs.log(logger, logging.INFO, "API keys read again", keys=len(keys.ring.keys))
        except InvalidKeys as error:
            logs.log(logger, logging.ERROR, "API keys file refused: the previous keys stay in force", error=str(error))


async def main() -> None:
    settings = GatewaySettings()
    logs.configure("gateway", settings.log_level, settings.log_format)
    tracing.configure("gateway", settings.otlp_endpoint, settings.trace_sample_ratio)
    if not settings.auth_enabled and not is_loopback(settings.host):
        raise SystemExit(f"VIZSEARCH_AUTH_ENABLED=false is refused on {settings.host}: "
                         "authentication may be off only on a loopback address")
    try:
        keys = KeyFile(settings.api_keys_file)
    except InvalidKeys as error:
        raise SystemExit(str(error)) from error
    if settings.auth_enabled and not keys.ring.keys:
        logs.log(logger, logging.WARNING, "no API keys configured: every call will be refused (401)")
    logs.log(logger, logging.INFO, "authentication", enabled=settings.auth_enabled, keys=len(keys.ring.keys))
    backends = Backends.connect(settings)
    # Idle connections are checked before use: one that a Redis restart or stall broke is replaced.
    redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, health_check_interval=5)
    limiter = RateLimiter(redis_client, settings.rate_limit_per_minute)
    gateway = Gateway(settings, backends, ObjectStore(settings), keys, limiter, UploadLedger(redis_client))
    http = EmbeddedHttpServer(http_api.create_app(gateway), settings.host, settings.http_port,
                              settings.forwarded_allow_ips or None)
    await http.start()

    def register(server):
        gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayServicer(gateway), server)
        return [SERVICE_NAME]

    reloading = asyncio.create_task(reload_keys(keys, settings.api_keys_reload_s))

    async def close():
        reloading.cancel()
        await http.stop()
        await backends.close()
        await redis_client.aclose()

    await grpc_server.serve("gateway", settings, register, on_stop=close, probe=gateway.unready_backends)


if __name__ == "__main__":
    asyncio.run(main())
