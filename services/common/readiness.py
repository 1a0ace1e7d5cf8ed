"""How a service waits for its backends, and says whether it can serve.

- `retry_until_ready` runs a start-up step (connect, load the model's description)
  until it succeeds, with backoff, logging each wait;
- a probe (an async function naming the backends that do not answer) runs every
  VIZSEARCH_HEALTH_PROBE_INTERVAL_S once the service is up: the gRPC health status,
  which Kubernetes and the gateway's /readyz read, says SERVING only while every
  backend a request needs answers.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import logs

logger = logging.getLogger(__name__)
T = TypeVar("T")
Probe = Callable[[], Awaitable[list[str]]]
PROBE_TIMEOUT_S = 3.0


async def retry_until_ready(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    delay = 0.5
    while True:
        try:
            return await attempt()
        except Exception as error:  # noqa: BLE001 - any backend not up yet: keep waiting
            logs.log(logger, logging.WARNING, f"waiting for {what}", error=str(error), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def grpc_serving(channel: grpc.aio.Channel) -> bool:
    """Whether the service behind the channel reports SERVING."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                 timeout=PROBE_TIMEOUT_S)
    except grpc.aio.AioRpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


async def answers(check: Callable[[], Awaitable[object]]) -> bool:
    """Whether check() completes within the probe timeout without an error."""
    try:
        await asyncio.wait_for(check(), PROBE_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001 - whatever the failure, the backend does not answer
        return False


async def down(checks: dict[str, Callable[[], Awaitable[bool]]]) -> list[str]:
    """The names of the checks that fail, all run at once."""
    names = sorted(checks)
    results = await asyncio.gather(*(checks[n]() for n in names))
    return [n for n, ok in zip(names, results) if not ok]
