"""Runs the indexer: `python -m services.indexer` (configured by VIZSEARCH_* variables).

One process serves the Indexer gRPC API, the MinIO webhook, and the reconciler
loop; the work itself is done by Celery workers (`python -m services.indexer.worker`).
"""

import asyncio
import logging

from services.common import grpc_server, logs
from services.common.genproto.vizsearch.v1 import indexer_pb2, indexer_pb2_grpc
from services.common.http_server import EmbeddedHttpServer
from services.indexer import webhook
from services.indexer.config import IndexerSettings
from services.indexer.datasets import Indexer
from services.indexer.ingest import Ingestor
from services.indexer.servicer import IndexerServicer

logger = logging.getLogger("services.indexer")
SERVICE_NAME = indexer_pb2.DESCRIPTOR.services_by_name["Indexer"].full_name


async def wait_for_backends(indexer: Indexer) -> None:
    """Ready once the embedder answers and the collections exist."""
    delay = 0.5
    while True:
        try:
            model = await asyncio.to_thread(indexer.ingestor.model)
            logs.log(logger, logging.INFO, "backends ready", model_version=model.version)
            return
        except Exception as error:  # noqa: BLE001 - any backend not up yet: keep waiting
            logs.log(logger, logging.WARNING, "waiting for backends", error=str(error), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def reconcile_forever(indexer: Indexer, interval_s: float) -> None:
    while True:
        try:
            await asyncio.to_thread(indexer.reconcile)
        except Exception as error:  # noqa: BLE001 - a failed pass is retried at the next one
            logs.log(logger, logging.WARNING, "reconcile pass failed", error=str(error))
        await asyncio.sleep(interval_s)


async def main() -> None:
    settings = IndexerSettings()
    logs.configure("indexer", settings.log_level, settings.log_format)
    ingestor = Ingestor(settings)
    indexer = Indexer(ingestor)
    if not settings.webhook_token:
        logs.log(logger, logging.WARNING, "VIZSEARCH_WEBHOOK_TOKEN is empty: bucket notifications are refused")
    http = EmbeddedHttpServer(webhook.create_app(indexer, settings.webhook_token, settings.bucket),
                              settings.host, settings.webhook_port)
    await http.start()
    background: list[asyncio.Task] = []

    async def ready():
        await wait_for_backends(indexer)
        if settings.reconcile_interval_s > 0:
            background.append(asyncio.create_task(reconcile_forever(indexer, settings.reconcile_interval_s)))

    def register(server):
        indexer_pb2_grpc.add_IndexerServicer_to_server(IndexerServicer(indexer), server)
        return [SERVICE_NAME]

    async def close():
        for task in background:
            task.cancel()
        await http.stop()
        ingestor.close()

    await grpc_server.serve("indexer", settings, register, ready=ready(), on_stop=close)


if __name__ == "__main__":
    asyncio.run(main())
