"""The CLIP models served by Triton, seen from the embedder.

Batches larger than the models' max_batch_size are split and sent concurrently,
so Triton's dynamic batcher keeps every instance busy.
"""

import asyncio
import json

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from services.common import tracing
from services.embedder.config import EmbedderSettings


class TritonUnavailable(RuntimeError):
    """Triton could not be reached or did not answer in time."""

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status


class ItemRejected(ValueError):
    """A model refused one request's input (clip_jpeg: a JPEG its decoder cannot read)."""


# Statuses with which a model refuses its input; any other means Triton is unavailable.
_REFUSALS = ("StatusCode.INTERNAL", "StatusCode.INVALID_ARGUMENT")


class TritonClip:
    def __init__(self, settings: EmbedderSettings):
        self.settings = settings
        self.client = InferenceServerClient(settings.triton_url)
        self._max_batch: dict[str, int] = {}

    async def close(self) -> None:
        await self.client.close()

    async def ready(self) -> None:
        """Raises unless Triton is up with every model it serves for us loaded."""
        for model in (self.settings.triton_image_model, self.settings.triton_text_model,
                      self.settings.triton_jpeg_model):
            if not await self.client.is_model_ready(model):
                raise TritonUnavailable(f"Triton model {model} is not ready")

    async def metadata(self, timeout_s: float) -> dict:
        """The checkpoint's description: model_id, dimension, version, image_size, max_text_tokens."""
        query = InferInput("QUERY", [1], "BOOL")
        query.set_data_from_numpy(np.array([True]))
        result = await self._infer(self.settings.triton_metadata_model, [query], "METADATA", timeout_s)
        return json.loads(result.as_numpy("METADATA")[0])

    async def embed_texts(self, texts: list[str], timeout_s: float) -> np.ndarray:
        def request(chunk: list[str]) -> InferInput:
            tensor = InferInput("TEXT", [len(chunk), 1], "BYTES")
            tensor.set_data_from_numpy(np.array([t.encode() for t in chunk], dtype=np.object_).reshape(-1, 1))
            return tensor

        return await self._embed_in_chunks(self.settings.triton_text_model, texts, request, timeout_s)

    async def embed_pixels(self, pixels: np.ndarray, timeout_s: float) -> np.ndarray:
        def request(chunk: np.ndarray) -> InferInput:
            tensor = InferInput("PIXELS", list(chunk.shape), "UINT8")
            tensor.set_data_from_numpy(chunk)
            return tensor

        return await self._embed_in_chunks(self.settings.triton_image_model, pixels, request, timeout_s)

    async def embed_jpeg(self, jpeg: bytes, regions: list[tuple[int, int, int, int]], timeout_s: float) -> np.ndarray:
        """One embedding per region (left, top, right, bottom) of one JPEG, decoded by Triton;
        the dynamic batcher joins concurrent calls into one batch."""
        data = InferInput("JPEG", [1, 1], "BYTES")
        data.set_data_from_numpy(np.array([[jpeg]], dtype=np.object_))
        boxes = InferInput("REGIONS", [1, len(regions), 4], "FP32")
        boxes.set_data_from_numpy(np.array([regions], dtype=np.float32))
        try:
            result = await self._infer(self.settings.triton_jpeg_model, [data, boxes], "EMBEDDING", timeout_s)
        except TritonUnavailable as error:
            if error.status in _REFUSALS:
                raise ItemRejected(str(error)) from error
            raise
        return result.as_numpy("EMBEDDING")[0]

    async def _embed_in_chunks(self, model: str, items, make_input, timeout_s: float) -> np.ndarray:
        step = await self._max_batch_size(model, timeout_s)
        chunks = [items[i : i + step] for i in range(0, len(items), step)]
        results = await asyncio.gather(*(self._infer(model, [make_input(c)], "EMBEDDING", timeout_s) for c in chunks))
        return np.concatenate([r.as_numpy("EMBEDDING") for r in results])

    async def _max_batch_size(self, model: str, timeout_s: float) -> int:
        if model not in self._max_batch:
            try:
                config = await self.client.get_model_config(model, as_json=True, client_timeout=timeout_s)
            except InferenceServerException as error:
                raise TritonUnavailable(f"Triton model {model}: {error.message()}") from error
            self._max_batch[model] = max(1, int(config["config"].get("max_batch_size", 1)))
        return self._max_batch[model]

    async def _infer(self, model: str, inputs: list[InferInput], output: str, timeout_s: float):
        try:
            outputs = [InferRequestedOutput(output)]
            return await self.client.infer(model, inputs, outputs=outputs, client_timeout=timeout_s,
                                           headers=tracing.context_headers())
        except InferenceServerException as error:
            raise TritonUnavailable(f"Triton model {model} at {self.settings.triton_url}: {error.message()}",
                                    error.status()) from error
