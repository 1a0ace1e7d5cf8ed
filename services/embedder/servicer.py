"""The Embedder gRPC service: validates requests, prepares images on a thread
pool, and has Triton embed them. One bad image (or box) fails only its own item.

An image with boxes is fetched and decoded once: the whole image and every box are
cut from the same pixels and embedded in the same Triton call. Where Triton decodes
JPEGs (it has a GPU: clip_metadata's jpeg_decode), an upright RGB JPEG is not decoded
here at all: its bytes and the rectangles to cut go to Triton's clip_jpeg."""

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import numpy as np
import prometheus_client

from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.common.storage import ObjectNotFound, ObjectStore, ObjectTooLarge
from services.common import images
from model import preprocess
from services.embedder.config import EmbedderSettings
from services.embedder.triton import ItemRejected, TritonClip, TritonUnavailable

logger = logging.getLogger(__name__)

BATCH_SIZE = prometheus_client.Histogram(
    "vizsearch_embedder_batch_size", "Items per embedding call.", ["kind"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
ITEM_ERRORS = prometheus_client.Counter(
    "vizsearch_embedder_item_errors_total", "Images that could not be embedded, by status code.", ["code"]
)


Rectangle = tuple[int, int, int, int]  # left, top, right, bottom, in whole pixels


@dataclass
class PreparedBox:
    """One of an image's boxes ready for the model (clipped to the image): its pixels, or
    where Triton decodes, its rectangle; or why not."""

    box: images.Box | None = None
    pixels: np.ndarray | None = None
    region: Rectangle | None = None
    error: str = ""


@dataclass
class PreparedImage:
    """An image ready for the model (its pixels, or its JPEG and the rectangles Triton
    cuts: the image or its crop first, then each box), or the reason it is not."""

    pixels: np.ndarray | None = None
    jpeg: bytes | None = None
    regions: list[Rectangle] = field(default_factory=list)
    width: int = 0
    height: int = 0
    sha256: str = ""
    error_code: grpc.StatusCode | None = None
    error: str = ""
    boxes: list[PreparedBox] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.pixels is not None or self.jpeg is not None

    def pieces(self) -> list[np.ndarray]:
        """The pixels of the image (or its crop) and of each good box, in that order."""
        return [self.pixels, *(b.pixels for b in self.boxes if b.pixels is not None)]


class EmbedderServicer(embedder_pb2_grpc.EmbedderServicer):
    def __init__(self, settings: EmbedderSettings, triton: TritonClip, store: ObjectStore):
        self.settings = settings
        self.triton = triton
        self.store = store
        self.pool = ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="preprocess")
        self.decode_budget = images.DecodeBudget(settings.decode_budget_bytes)
        self.model: common_pb2.ModelInfo | None = None

    async def load_model_info(self, timeout_s: float) -> common_pb2.ModelInfo:
        """Asks Triton which checkpoint it serves; the embedder is ready once this succeeds."""
        self.model = common_pb2.ModelInfo(**await self.triton.metadata(timeout_s))
        return self.model

    async def GetModelInfo(self, request, context):
        return await self._model(context)

    async def EmbedTexts(self, request: embedder_pb2.EmbedTextsRequest, context):
        model = await self._model(context)
        texts = list(request.texts)
        await self._check_batch(len(texts), "texts", context)
        for i, text in enumerate(texts):
            if not text.strip():
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"texts[{i}] is empty")
            if len(text) > self.settings.max_text_chars:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"texts[{i}] has {len(text)} characters, over the limit of {self.settings.max_text_chars}",
                )
        BATCH_SIZE.labels("text").observe(len(texts))
        vectors = await self._call_triton(self.triton.embed_texts(texts, self._timeout(context)), context)
        return embedder_pb2.EmbedTextsResponse(model=model, vectors=[common_pb2.Vector(values=v) for v in vectors])

    async def EmbedImages(self, request: embedder_pb2.EmbedImagesRequest, context):
        model = await self._model(context)
        await self._check_batch(len(request.images), "images", context)
        await self._check_batch(sum(1 + len(item.boxes) for item in request.images), "images and their boxes",
                                context)
        loop = asyncio.get_running_loop()
        triton_decodes = model.jpeg_decode == "triton"
        prepared: list[PreparedImage] = await asyncio.gather(
            *(loop.run_in_executor(self.pool, self._prepare, item, model.image_size, triton_decodes)
              for item in request.images)
        )
        vectors = await self._call_triton(self._embed(prepared, request.images, model.image_size,
                                                      self._timeout(context)), context)
        for i, item in enumerate(prepared):
            if item.error_code is not None:
                ITEM_ERRORS.labels(item.error_code.name).inc()
                if request.fail_on_item_error:
                    await context.abort(item.error_code, f"images[{i}]: {item.error}")
            for j, box in enumerate(item.boxes):
                if box.error:
                    ITEM_ERRORS.labels(grpc.StatusCode.INVALID_ARGUMENT.name).inc()
                    if request.fail_on_item_error:
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"images[{i}].boxes[{j}]: {box.error}")
        results = []
        for item, item_vectors in zip(prepared, vectors):
            result = embedder_pb2.ImageEmbedding(width=item.width, height=item.height, sha256=item.sha256)
            if not item.ready:
                result.error.code = item.error_code.value[0]
                result.error.message = item.error
                results.append(result)
                continue
            embedded = iter(item_vectors)
            result.vector.values.extend(next(embedded))
            for box in item.boxes:
                answer = result.boxes.add()
                if box.box is not None:
                    answer.box.CopyFrom(common_pb2.Box(x1=box.box.x1, y1=box.box.y1, x2=box.box.x2, y2=box.box.y2))
                if not box.error:
                    answer.vector.values.extend(next(embedded))
                else:
                    answer.error.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
                    answer.error.message = box.error
            results.append(result)
        return embedder_pb2.EmbedImagesResponse(model=model, results=results)

    async def _embed(self, prepared: list[PreparedImage], inputs, image_size: int, timeout_s: float) -> list:
        """Each prepared image's vectors (the image or its crop, then each good box): every
        item with pixels in one Triton call (chunked to its batch size) beside one clip_jpeg
        call per JPEG, all at once. A JPEG Triton cannot decode is decoded here instead."""
        pixel_indexes = [i for i, item in enumerate(prepared) if item.pixels is not None]
        jpeg_indexes = [i for i, item in enumerate(prepared) if item.jpeg is not None]
        pieces = [p for i in pixel_indexes for p in prepared[i].pieces()]
        BATCH_SIZE.labels("image").observe(len(pieces) + sum(len(prepared[i].regions) for i in jpeg_indexes))

        async def pixel_vectors():
            return await self.triton.embed_pixels(np.stack(pieces), timeout_s) if pieces else np.zeros((0, 0))

        async def jpeg_vectors(index: int):
            item = prepared[index]
            try:
                return await self.triton.embed_jpeg(item.jpeg, item.regions, timeout_s)
            except ItemRejected as error:
                logger.warning("images[%d]: %s; decoding it in the embedder", index, error)
                retry = await asyncio.get_running_loop().run_in_executor(
                    self.pool, self._prepare, inputs[index], image_size, False)
                prepared[index] = retry
                return await self.triton.embed_pixels(np.stack(retry.pieces()), timeout_s) if retry.ready else None

        embedded, *jpeg_results = await asyncio.gather(pixel_vectors(), *(jpeg_vectors(i) for i in jpeg_indexes))
        vectors, start = [None] * len(prepared), 0
        for i in pixel_indexes:
            count = len(prepared[i].pieces())
            vectors[i], start = embedded[start : start + count], start + count
        for i, result in zip(jpeg_indexes, jpeg_results):
            vectors[i] = result
        return vectors

    def _prepare(self, item: common_pb2.ImageInput, image_size: int, triton_decodes: bool) -> PreparedImage:
        """Fetch (for a reference), decode, crop and resize one image, or where Triton decodes
        an upright RGB JPEG, only read its header and work out the rectangles; on the pool."""
        try:
            data = self._image_bytes(item)
            digest = hashlib.sha256(data).hexdigest()
            header, needed = images.open_image(data, self.settings.max_image_pixels, self.settings.max_decoded_bytes)
            if item.boxes and item.HasField("box"):
                raise images.BadImage("set box (one crop) or boxes (the image and its boxes), not both")
            if triton_decodes and images.is_upright_rgb_jpeg(header):
                return self._jpeg_for_triton(item, data, header.size, digest)
            with self.decode_budget.reserve(needed):
                image = images.load_rgb(header)
                width, height = image.size
                boxes = [self._prepare_box(b, item.box_margin, image.size, image, image_size) for b in item.boxes]
                if item.HasField("box"):
                    b = item.box
                    image = images.crop(image, images.Box(b.x1, b.y1, b.x2, b.y2), item.box_margin)
                pixels = preprocess.to_model_pixels(image, image_size)
            return PreparedImage(pixels=pixels, width=width, height=height, sha256=digest, boxes=boxes)
        except ObjectNotFound as error:
            return PreparedImage(error_code=grpc.StatusCode.NOT_FOUND, error=str(error))
        except (images.BadImage, ObjectTooLarge) as error:
            return PreparedImage(error_code=grpc.StatusCode.INVALID_ARGUMENT, error=str(error))
        except Exception as error:  # storage down, or a decoder bug: this item only
            logger.exception("preparing an image failed")
            return PreparedImage(error_code=grpc.StatusCode.UNAVAILABLE, error=f"could not read the image: {error}")

    def _jpeg_for_triton(self, item: common_pb2.ImageInput, data: bytes, size: tuple[int, int],
                         digest: str) -> PreparedImage:
        width, height = size
        whole = (0, 0, width, height)
        if item.HasField("box"):
            whole = images.crop_rectangle(images.Box(item.box.x1, item.box.y1, item.box.x2, item.box.y2),
                                          item.box_margin, width, height)
        boxes = [self._prepare_box(b, item.box_margin, size) for b in item.boxes]
        return PreparedImage(jpeg=data, regions=[whole, *(b.region for b in boxes if b.region is not None)],
                             width=width, height=height, sha256=digest, boxes=boxes)

    @staticmethod
    def _prepare_box(box: common_pb2.Box, margin: float, size: tuple[int, int], image=None,
                     image_size: int = 0) -> PreparedBox:
        """The box clipped to an image of `size` and the rectangle to cut (grown by the margin);
        given the decoded image, also the rectangle's model pixels."""
        try:
            clipped = images.clip(images.Box(box.x1, box.y1, box.x2, box.y2), *size)
            region = images.crop_rectangle(clipped, margin, *size)
        except images.BadImage as error:
            return PreparedBox(error=str(error))
        pixels = None if image is None else preprocess.to_model_pixels(image.crop(region), image_size)
        return PreparedBox(box=clipped, pixels=pixels, region=region)

    def _image_bytes(self, item: common_pb2.ImageInput) -> bytes:
        limit = self.settings.max_image_bytes
        source = item.WhichOneof("source")
        if source == "data":
            if len(item.data) > limit:
                raise ObjectTooLarge(f"image is {len(item.data)} bytes, over the {limit}-byte limit")
            return item.data
        if source == "ref":
            if not item.ref.dataset or not item.ref.key:
                raise images.BadImage("an image reference needs both dataset and key")
            return self.store.get(item.ref.dataset, item.ref.key, limit)
        raise images.BadImage("no image given: set data or ref")

    async def _model(self, context) -> common_pb2.ModelInfo:
        if self.model is None:
            try:
                await self.load_model_info(self._timeout(context))
            except TritonUnavailable as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"the model is not loaded yet: {error}")
        return self.model

    async def _check_batch(self, count: int, field: str, context) -> None:
        if count == 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field} is empty: give at least one")
        if count > self.settings.max_batch_items:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{field} has {count} items, over the limit of {self.settings.max_batch_items} per call",
            )

    def _timeout(self, context) -> float:
        """Triton calls end with the caller's deadline, or the configured limit if sooner."""
        remaining = context.time_remaining()
        return self.settings.triton_timeout_s if remaining is None else min(remaining, self.settings.triton_timeout_s)

    async def _call_triton(self, call, context):
        try:
            return await call
        except TritonUnavailable as error:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline passed waiting for Triton: {error}")
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
