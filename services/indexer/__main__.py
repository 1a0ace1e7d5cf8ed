"""Runs the indexer: `python -m services.indexer` (configured by VIZSEARCH_* variables).

One process serves the Indexer gRPC API, the MinIO webhook, the reconciler loop
and the sweeper loop; the work itself is done by Celery workers
(`python -m services.indexer.worker`).
"""

import asyncio
import logging
from collections.abc import Awaitable

from services.common import grpc_server, logs, readiness, tracing
from services.common.genproto.vizsearch.v1 import indexer_pb2, indexer_pb2_grpc
from services.common.http_server import EmbeddedHttpServer
from services.indexer import webhook
from services.indexer.celery_app import create_app
from services.indexer.config import IndexerSettings
from services.indexer.dispatcher import Dispatcher
from services.indexer.indexer import Indexer
from services.indexer.servicer import IndexerServicer
from services.indexer.state import IndexerState
from services.indexer.sweeper import Sweeper

logger = logging.getLogger("services.indexer")
SERVICE_NAME = indexer_pb2.DESCRIPTOR.services_by_name["Indexer"].full_name


async def wait_for_backends(indexer: Indexer) -> None:
    """Ready once the embedder answers and the collections exist."""
    model = await readiness.retry_until_ready(lambda: asyncio.to_thread(indexer.state.model),
                                              "the embedder and Milvus")
    logs.log(logger, logging.INFO, "backends ready", model_version=model.version)


async def every(interval_s: float, name: str, one_pass) -> None:
    while True:
        try:
            await asyncio.to_thread(one_pass)
        except Exception as error:  # noqa: BLE001 - a failed pass is retried at the next one
            logs.log(logger, logging.WARNING, f"{name} pass failed", error=str(error))
        await asyncio.sleep(interval_s)


async def main() -> None:
    settings = IndexerSettings()
    logs.configure("indexer", settings.log_level, settings.log_format)
    tracing.configure("indexer", settings.otlp_endpoint, settings.trace_sample_ratio)
    tracing.instrument_celery()
    state = IndexerState(settings)
    dispatcher = Dispatcher(state, create_app(settings))
    indexer = Indexer(state, dispatcher)
    sweeper = Sweeper(state, dispatcher)
    if not settings.webhook_token:
        logs.log(logger, logging.WARNING, "VIZSEARCH_WEBHOOK_TOKEN is empty: bucket notifications are refused")
    http = EmbeddedHttpServer(webhook.create_app(indexer, settings.webhook_token, settings.bucket),
                              settings.host, settings.webhook_port)
    await http.start()
    background: list[asyncio.Task] = []

    async def ready():
        await wait_for_backends(indexer)
        background.append(asyncio.create_task(every(settings.sweep_interval_s, "sweep", sweeper.sweep)))
        if settings.reconcile_interval_s > 0:
            background.append(asyncio.create_task(every(settings.reconcile_interval_s, "reconcile", indexer.reconcile)))

    def register(server):
        indexer_pb2_grpc.add_IndexerServicer_to_server(IndexerServicer(indexer), server)
        return [SERVICE_NAME]

    async def close():
        for task in background:
            task.cancel()
        await http.stop()
        state.close()

    def probe_redis() -> Awaitable[bool]:
        return readiness.answers(lambda: asyncio.to_thread(state.redis.ping))

    def probe_milvus() -> Awaitable[bool]:
        return readiness.answers(lambda: asyncio.to_thread(lambda: state.vectors.client.get_server_version()))

    async def probe() -> list[str]:
        return await readiness.down({"redis": probe_redis, "milvus": probe_milvus})

    await grpc_server.serve("indexer", settings, register, ready=ready(), on_stop=close, probe=probe)


if __name__ == "__main__":
    asyncio.run(main())
