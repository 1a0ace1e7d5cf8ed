"""Runs the embedder: `python -m services.embedder` (configured by VIZSEARCH_* variables)."""

import asyncio
import logging

from services.common import grpc_server, logs, readiness, tracing
from services.common.genproto.vizsearch.v1 import embedder_pb2, embedder_pb2_grpc
from services.common.storage import ObjectStore
from services.embedder.config import EmbedderSettings
from services.embedder.servicer import EmbedderServicer
from services.embedder.triton import TritonClip

logger = logging.getLogger("services.embedder")
SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name


async def wait_for_model(servicer: EmbedderServicer) -> None:
    """Retries until Triton serves the model; the service reports NOT_SERVING until then."""
    model = await readiness.retry_until_ready(lambda: servicer.load_model_info(timeout_s=10), "Triton")
    logs.log(logger, logging.INFO, "model ready", model_id=model.model_id, version=model.version,
             dimension=model.dimension, runtime=model.runtime)


async def main() -> None:
    settings = EmbedderSettings()
    logs.configure("embedder", settings.log_level, settings.log_format)
    tracing.configure("embedder", settings.otlp_endpoint, settings.trace_sample_ratio)
    triton = TritonClip(settings)
    servicer = EmbedderServicer(settings, triton, ObjectStore(settings))

    def register(server):
        embedder_pb2_grpc.add_EmbedderServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def close():
        servicer.close()
        await triton.close()

    async def probe() -> list[str]:
        return [] if await readiness.answers(triton.ready) else ["triton"]

    await grpc_server.serve("embedder", settings, register, ready=wait_for_model(servicer), on_stop=close, probe=probe)


if __name__ == "__main__":
    asyncio.run(main())
