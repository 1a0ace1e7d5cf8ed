"""Runs the embedder: `python -m services.embedder` (configured by VIZSEARCH_* variables)."""

import asyncio
import logging

from services.common import grpc_server, logs
from services.common.genproto.vizsearch.v1 import embedder_pb2, embedder_pb2_grpc
from services.common.storage import ObjectStore
from services.embedder.config import EmbedderSettings
from services.embedder.servicer import EmbedderServicer
from services.embedder.triton import TritonClip, TritonUnavailable

logger = logging.getLogger("services.embedder")
SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name


async def wait_for_model(servicer: EmbedderServicer) -> None:
    """Retries until Triton serves the model; the service reports NOT_SERVING until then."""
    delay = 0.5
    while True:
        try:
            model = await servicer.load_model_info(timeout_s=10)
            logs.log(logger, logging.INFO, "model ready", model_id=model.model_id, version=model.version,
                     dimension=model.dimension)
            return
        except TritonUnavailable as error:
            logs.log(logger, logging.WARNING, "waiting for Triton", error=str(error), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def main() -> None:
    settings = EmbedderSettings()
    logs.configure("embedder", settings.log_level, settings.log_format)
    triton = TritonClip(settings)
    servicer = EmbedderServicer(settings, triton, ObjectStore(settings))

    def register(server):
        embedder_pb2_grpc.add_EmbedderServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def close():
        servicer.close()
        await triton.close()

    await grpc_server.serve("embedder", settings, register, ready=wait_for_model(servicer), on_stop=close)


if __name__ == "__main__":
    asyncio.run(main())
