"""Runs the query service: `python -m services.query` (configured by VIZSEARCH_* variables)."""

import asyncio
import logging

from services.common import grpc_client, grpc_server, logs, readiness, tracing
from services.common.genproto.vizsearch.v1 import embedder_pb2_grpc, query_pb2, query_pb2_grpc
from services.common.vectors import VectorReader
from services.query.config import QuerySettings
from services.query.search import Searcher
from services.query.servicer import QueryServicer

logger = logging.getLogger("services.query")
SERVICE_NAME = query_pb2.DESCRIPTOR.services_by_name["Query"].full_name


async def wait_for_backends(settings: QuerySettings, embedder) -> Searcher:
    vectors = None

    async def connect() -> Searcher:
        nonlocal vectors
        vectors = vectors or VectorReader(settings)  # kept across retries: one client, not one per try
        searcher = Searcher(settings, embedder, vectors)
        model = await searcher.model(timeout=10)
        logs.log(logger, logging.INFO, "backends ready", model_version=model.version)
        return searcher

    return await readiness.retry_until_ready(connect, "the embedder and Milvus")


async def main() -> None:
    settings = QuerySettings()
    logs.configure("query", settings.log_level, settings.log_format)
    tracing.configure("query", settings.otlp_endpoint, settings.trace_sample_ratio)
    channel = grpc_client.channel(settings.embedder_url, settings.internal_token)
    embedder = embedder_pb2_grpc.EmbedderStub(channel)
    servicer = QueryServicer()

    async def ready():
        servicer.searcher = await wait_for_backends(settings, embedder)

    def register(server):
        query_pb2_grpc.add_QueryServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def close():
        await channel.close()
        if servicer.searcher is not None:
            await servicer.searcher.vectors.close()

    async def probe() -> list[str]:
        return await readiness.down({
            "embedder": lambda: readiness.grpc_serving(channel),
            "milvus": lambda: readiness.answers(servicer.searcher.serves),
        })

    await grpc_server.serve("query", settings, register, ready=ready(), on_stop=close, probe=probe)


if __name__ == "__main__":
    asyncio.run(main())
