"""What a search does: turn the query into one vector, search the model's
collection of the right level, and shape the hits into one result per image.

- text: embedded by the embedder;
- image by (dataset, key): the stored vector when the image is indexed, else embedded;
- object by (dataset, key, box): the stored vector when that box is indexed, else embedded;
- image or object by value: embedded (objects cropped to their box, grown by the
  indexer's margin, as object entries are);
- texts and images by value are remembered (least recently used out), so paging
  through a query embeds it once;
- all: the weighted sum of its terms' vectors, normalised (negative weights push away).

At the objects level the search fetches several object hits per result image,
groups them by image (an image scores as its best object), and pages over images.
"""

import asyncio
import hashlib
import math
import time
from collections import OrderedDict

import grpc
import numpy as np
import prometheus_client

from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, query_pb2
from services.common import vectors as vector_index
from services.common.vectors import SearchBreadth, VectorReader, decode_boxes, entry_id, is_missing_collection
from services.common.wire import LEVEL_NAMES, PREDICTION, SOURCE_ENUMS, ModelInfoCache
from vizsearch.models import RESULT_WINDOW
from services.query import filters
from services.query.config import QuerySettings

MAX_TERMS = 16
MAX_DEPTH = 3
_IMAGE_FIELDS = ["dataset", "key", "width", "height", "objects", "boxes"]
_OBJECT_FIELDS = ["dataset", "key", "width", "height", "label", "source", "score", "box_x1", "box_y1", "box_x2",
                  "box_y2"]
CACHE_LOOKUPS = prometheus_client.Counter(
    "vizsearch_query_embedding_cache_total", "Query vectors looked up in the embedding cache.", ["result"])


class SearchError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> SearchError:
    return SearchError(grpc.StatusCode.INVALID_ARGUMENT, message)


class Searcher:
    def __init__(self, settings: QuerySettings, embedder, vectors: VectorReader):
        self.settings = settings
        self.embedder = embedder  # an aio EmbedderStub
        self.vectors = vectors
        self._breadth = SearchBreadth(settings.search_ef, settings.search_nprobe)
        self._model = ModelInfoCache()
        self._vectors: OrderedDict[tuple, np.ndarray] = OrderedDict()  # the embedding cache

    async def model(self, timeout: float | None = None) -> common_pb2.ModelInfo:
        """The model the embedder serves: queries are searched in its collections."""
        info = self._model.fresh()
        if info is None:
            info = self._model.keep(
                await self._embed(self.embedder.GetModelInfo, embedder_pb2.GetModelInfoRequest(), "model", timeout))
        return info

    async def search(self, request: query_pb2.SearchRequest, timeout: float | None = None) -> query_pb2.SearchResponse:
        started = time.perf_counter()
        top_k = request.top_k or 20
        if not 1 <= top_k <= self.settings.max_top_k:
            raise _invalid(f"top_k is {request.top_k}: give 1 to {self.settings.max_top_k}")
        if request.offset < 0:
            raise _invalid(f"offset is {request.offset}: give 0 or more")
        window = top_k + request.offset  # checked before anything is embedded
        if window > RESULT_WINDOW:
            raise _invalid(f"top_k + offset is {window}: at most {RESULT_WINDOW}")
        if request.HasField("min_score") and not -1 <= request.min_score <= 1:
            raise _invalid(f"min_score is {request.min_score}: cosine similarity lies in [-1, 1]")
        if not request.HasField("query"):
            raise _invalid("query is missing: give text, image, object or all")
        level = request.level or (
            query_pb2.LEVEL_OBJECTS if request.query.WhichOneof("kind") == "object" else query_pb2.LEVEL_IMAGES)
        if level not in LEVEL_NAMES:
            raise _invalid(f"level is {level}: use LEVEL_IMAGES or LEVEL_OBJECTS")
        try:
            expression = filters.expression(request.filters, level)
        except filters.BadFilter as error:
            raise _invalid(str(error)) from error
        model = await self.model(timeout)
        vector = await self._vector(request.query, model.version, "query", 0, timeout)
        if level == query_pb2.LEVEL_OBJECTS:
            results = await self._search_objects(model.version, vector, expression, top_k, request.offset)
        else:
            results = await self._search_images(model.version, vector, expression, top_k, request.offset)
        if request.HasField("min_score"):
            results = [r for r in results if r.score >= request.min_score]
        took_ms = (time.perf_counter() - started) * 1000
        return query_pb2.SearchResponse(model=model, took_ms=took_ms, results=results)

    # -- the query's vector ------------------------------------------------
    async def _vector(self, term: query_pb2.QueryTerm, version: str, path: str, depth: int, timeout) -> np.ndarray:
        kind = term.WhichOneof("kind")
        if kind == "text":
            text = term.text.strip()
            if not text:
                raise _invalid(f"{path}.text is empty")
            if len(term.text) > self.settings.max_text_chars:
                raise _invalid(f"{path}.text has {len(term.text)} characters, over the limit of "
                               f"{self.settings.max_text_chars}")
            return await self._remembered((version, "text", text), lambda: self._embed_text(text, path, timeout))
        if kind in ("image", "object"):
            image = getattr(term, kind)
            if kind == "object" and not image.HasField("box"):
                raise _invalid(f"{path}.object.box is missing: an object query is an image and a box")
            if kind == "image" and image.WhichOneof("source") == "ref" and not image.HasField("box"):
                stored = await self._stored_image_vector(version, image.ref)
                if stored is not None:
                    return stored
            if kind == "object" and image.WhichOneof("source") == "ref":
                stored = await self._stored_object_vector(version, image.ref, image.box)
                if stored is not None:
                    return stored
            if kind == "object":  # cropped as the indexer crops annotated boxes
                cropped = common_pb2.ImageInput()
                cropped.CopyFrom(image)
                cropped.box_margin = self.settings.object_box_margin
                image = cropped
            if image.WhichOneof("source") == "data":  # references are not remembered: the stored image may change
                box = image.box.SerializeToString() if image.HasField("box") else b""
                key = (version, "image", hashlib.sha256(image.data).digest(), box, image.box_margin)
                return await self._remembered(key, lambda: self._embed_image(image, path, kind, timeout))
            return await self._embed_image(image, path, kind, timeout)
        if kind == "all":
            return await self._combination(term.all, version, f"{path}.all", depth, timeout)
        raise _invalid(f"{path} is empty: give text, image, object or all")

    async def _embed_text(self, text: str, path: str, timeout) -> np.ndarray:
        reply = await self._embed(self.embedder.EmbedTexts, embedder_pb2.EmbedTextsRequest(texts=[text]),
                                  f"{path}.text", timeout)
        return np.asarray(reply.vectors[0].values, dtype=np.float32)

    async def _embed_image(self, image: common_pb2.ImageInput, path: str, kind: str, timeout) -> np.ndarray:
        request = embedder_pb2.EmbedImagesRequest(images=[image], fail_on_item_error=True)
        reply = await self._embed(self.embedder.EmbedImages, request, f"{path}.{kind}", timeout)
        return np.asarray(reply.results[0].vector.values, dtype=np.float32)

    async def _remembered(self, key: tuple, embed) -> np.ndarray:
        """The cached vector for `key`, else embed() (errors are not cached)."""
        if (vector := self._vectors.get(key)) is not None:
            self._vectors.move_to_end(key)
            CACHE_LOOKUPS.labels("hit").inc()
            return vector
        CACHE_LOOKUPS.labels("miss").inc()
        vector = await embed()
        vector.flags.writeable = False  # shared by every later query with this key
        if self.settings.embedding_cache_size:
            self._vectors[key] = vector
            while len(self._vectors) > self.settings.embedding_cache_size:
                self._vectors.popitem(last=False)
        return vector

    async def _combination(self, combination, version, path, depth, timeout) -> np.ndarray:
        if depth >= MAX_DEPTH:
            raise _invalid(f"{path} nests combinations deeper than {MAX_DEPTH}")
        terms = list(combination.terms)
        if not 1 <= len(terms) <= MAX_TERMS:
            raise _invalid(f"{path} has {len(terms)} terms: give 1 to {MAX_TERMS}")
        for i, weighted in enumerate(terms):
            if not math.isfinite(weighted.weight):
                raise _invalid(f"{path}[{i}].weight is not a finite number")
        vectors = await asyncio.gather(*(
            self._vector(t.query, version, f"{path}[{i}].query", depth + 1, timeout) for i, t in enumerate(terms)))
        total = sum(t.weight * v for t, v in zip(terms, vectors))
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise _invalid(f"{path}: the weighted terms cancel out (all weights zero, or opposite equal terms)")
        return total / norm

    async def _stored_image_vector(self, version: str, ref: common_pb2.ObjectRef) -> np.ndarray | None:
        try:
            found = await self.vectors.vectors_by_id(version, "images", [entry_id(version, ref.dataset, ref.key)])
        except Exception:  # not indexed under this model (no collection yet): embed it instead
            return None
        return np.asarray(next(iter(found.values())), dtype=np.float32) if found else None

    async def _stored_object_vector(self, version: str, ref: common_pb2.ObjectRef,
                                    box: common_pb2.Box) -> np.ndarray | None:
        """The vector of an indexed object with this box (to within a hundredth of a pixel), if
        any: a query by a box that search returned needs no embedding."""
        corners = (box.x1, box.y1, box.x2, box.y2)
        if not all(math.isfinite(v) for v in corners):
            return None  # the embedder names the fault
        expression = vector_index.box_near(ref.dataset, ref.key, corners)
        try:
            rows = await self.vectors.query(version, "objects", expression, ["vector"], 1)
        except Exception:  # not indexed under this model (no collection yet): embed it instead
            return None
        return np.asarray(rows[0]["vector"], dtype=np.float32) if rows else None

    async def _embed(self, method, request, path: str, timeout):
        deadline = min(timeout, self.settings.embed_timeout_s) if timeout else self.settings.embed_timeout_s
        try:
            return await method(request, timeout=deadline)
        except grpc.aio.AioRpcError as error:
            detail = (error.details() or "").removeprefix("images[0]: ").removeprefix("texts[0] ")
            if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                raise SearchError(error.code(), f"{path}: {detail}") from error
            code = error.code() if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED else grpc.StatusCode.UNAVAILABLE
            raise SearchError(code, f"embedder: {error.code().name}: {detail}") from error

    async def serves(self) -> None:
        """Raises unless Milvus answers a read of the served collection at the searches'
        consistency (a restarted Milvus answers its version long before that)."""
        await self.vectors.answers((await self.model()).version, self.settings.search_consistency)

    # -- searching -------------------------------------------------------
    async def _milvus(self, *args, **kwargs) -> list[dict]:
        try:
            return await self.vectors.search(*args, **kwargs)
        except Exception as error:  # pymilvus raises several types for one outage
            if is_missing_collection(error):
                return []  # nothing indexed under this model yet
            raise SearchError(grpc.StatusCode.UNAVAILABLE, f"Milvus: {error}") from error

    async def _search_images(self, version, vector, expression, top_k, offset) -> list[query_pb2.ImageHit]:
        hits = await self._milvus(version, "images", vector, top_k, offset, expression, _IMAGE_FIELDS,
                                  breadth=self._breadth, consistency=self.settings.search_consistency)
        results = [query_pb2.ImageHit(dataset=h["dataset"], key=h["key"], score=h["similarity"], width=h["width"],
                                      height=h["height"]) for h in hits]
        unstored = []
        for result, hit in zip(results, hits):
            boxes = decode_boxes(hit["boxes"])
            result.objects.extend(_object_hit(row, 0.0) for row in boxes)
            if hit["objects"] and not boxes:
                unstored.append(result)
        await self._attach_annotations(version, unstored)
        return results

    async def _search_objects(self, version, vector, expression, top_k, offset) -> list[query_pb2.ImageHit]:
        window = top_k + offset
        limit = min(RESULT_WINDOW, window * self.settings.objects_overfetch)
        hits = await self._milvus(version, "objects", vector, limit, 0, expression, _OBJECT_FIELDS,
                                  breadth=self._breadth, consistency=self.settings.search_consistency)
        images: OrderedDict[tuple[str, str], query_pb2.ImageHit] = OrderedDict()
        for hit in hits:  # best first, so an image's first hit is its best
            key = (hit["dataset"], hit["key"])
            if key not in images:
                images[key] = query_pb2.ImageHit(dataset=hit["dataset"], key=hit["key"], score=hit["similarity"],
                                                 width=hit["width"], height=hit["height"])
            images[key].objects.append(_object_hit(hit, hit["similarity"]))
        return list(images.values())[offset:window]

    async def _attach_annotations(self, version: str, results: list[query_pb2.ImageHit]) -> None:
        """Image results carry their annotated boxes (unscored), so clients can draw them; most
        image entries store them, and `results` are those with too many boxes to store."""
        if not results:
            return
        by_dataset: dict[str, list[str]] = {}
        for r in results:
            by_dataset.setdefault(r.dataset, []).append(r.key)
        expression = vector_index.of_images(by_dataset)
        try:
            rows = await self.vectors.query(version, "objects", expression, _OBJECT_FIELDS, RESULT_WINDOW,
                                            self.settings.search_consistency)
        except Exception as error:
            raise SearchError(grpc.StatusCode.UNAVAILABLE, f"Milvus: {error}") from error
        index = {(r.dataset, r.key): r for r in results}
        for row in sorted(rows, key=lambda r: (r["box_y1"], r["box_x1"])):
            index[(row["dataset"], row["key"])].objects.append(_object_hit(row, 0.0))


def _object_hit(row: dict, score: float) -> query_pb2.ObjectHit:
    hit = query_pb2.ObjectHit(
        box=common_pb2.Box(x1=row["box_x1"], y1=row["box_y1"], x2=row["box_x2"], y2=row["box_y2"]),
        label=row["label"], source=SOURCE_ENUMS.get(row["source"], query_pb2.OBJECT_SOURCE_UNSPECIFIED),
        score=score,
    )
    if row["source"] == PREDICTION:
        hit.detector_score = row["score"]
    return hit
