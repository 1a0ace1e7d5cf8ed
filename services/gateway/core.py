"""What the gateway does for a caller, whichever door they came in by (HTTP or
gRPC): check their rights, scope their datasets, call the backend with a
deadline, and turn backend failures into errors that name the problem."""

import asyncio
import functools
import hashlib
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from collections.abc import AsyncIterator, Awaitable, Callable
from collections import OrderedDict
from dataclasses import dataclass

import grpc
import redis
from minio.error import S3Error

from services.common import grpc_client, readiness
from services.common.status import grpc_code, http_status
from services.common.genproto.vizsearch.v1 import (embedder_pb2, embedder_pb2_grpc, indexer_pb2, indexer_pb2_grpc,
                                                   query_pb2, query_pb2_grpc)
from services.common import images, thumbnails
from services.common.storage import ObjectNotFound, ObjectStore, ObjectTooLarge, object_name, signature
from services.gateway.auth import ANONYMOUS, AuthError, KeyFile, Principal
from services.gateway.config import GatewaySettings
from services.gateway.ratelimit import RateLimiter
from services.gateway.uploads import UploadLedger
from vizsearch.names import check_dataset_name, check_key

_DATASET_NAMES_TTL_S = 5.0
logger = logging.getLogger(__name__)
IMAGE_CHUNK_BYTES = 256 * 1024
MIN_THUMBNAIL, MAX_THUMBNAIL, DEFAULT_THUMBNAIL = 16, 1024, thumbnails.GRID_SIZE
MAX_THUMBNAILS_PER_CALL = 100
SPOOL_IN_MEMORY_BYTES = 8 * 2**20  # an upload larger than this waits on disk (/tmp) on its way to storage


class GatewayError(Exception):
    """An error for the caller: an HTTP status, and the gRPC code it carries (a backend's own
    code passes through unchanged)."""

    def __init__(self, status: int, message: str, retry_after: int = 0, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, for 429
        self.grpc_code = code or grpc_code(status)

    @classmethod
    def from_code(cls, code: grpc.StatusCode, message: str) -> "GatewayError":
        return cls(http_status(code), message, code=code)


@dataclass(frozen=True)
class Thumbnail:
    content_type: str
    data: bytes  # empty: the caller's copy (If-None-Match) is current
    etag: str


class RecentThumbnails:
    """Thumbnails served lately, kept in memory for a while (least recently used out past a
    size): a page of results scrolled back to, or shown to a second person, costs no storage
    call. An image replaced meanwhile shows its old thumbnail until the entry expires."""

    def __init__(self, max_bytes: int, ttl_s: float):
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._entries: OrderedDict[tuple, tuple[float, Thumbnail]] = OrderedDict()
        self._bytes = 0

    def get(self, request: tuple) -> Thumbnail | None:
        entry = self._entries.get(request)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl_s:
            self._drop(request)
            return None
        self._entries.move_to_end(request)
        return entry[1]

    def put(self, request: tuple, thumbnail: Thumbnail) -> Thumbnail:
        if request in self._entries:
            self._drop(request)
        self._entries[request] = (time.monotonic(), thumbnail)
        self._bytes += len(thumbnail.data)
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))
        return thumbnail

    def _drop(self, request: tuple) -> None:
        _, thumbnail = self._entries.pop(request)
        self._bytes -= len(thumbnail.data)


def _matches(if_none_match: str | None, etag: str) -> bool:
    return bool(if_none_match) and etag in (t.strip() for t in if_none_match.split(","))


def check_image_path(dataset: str, key: str) -> None:
    """A dataset and key no object can have are refused here, never asked of storage."""
    try:
        check_dataset_name(dataset)
        check_key(dataset, key)
    except ValueError as error:
        raise GatewayError(400, f"no image can be at {dataset[:130]!r}/{key[:200]!r}: {error}") from error


def from_auth(error: AuthError) -> GatewayError:
    return GatewayError(error.status, str(error))


@dataclass
class Backends:
    query: query_pb2_grpc.QueryStub
    indexer: indexer_pb2_grpc.IndexerStub
    embedder: embedder_pb2_grpc.EmbedderStub
    channels: dict[str, grpc.aio.Channel]

    @classmethod
    def connect(cls, settings: GatewaySettings) -> "Backends":
        channels = {name: grpc_client.channel(url, settings.internal_token) for name, url in (
            ("query", settings.query_url), ("indexer", settings.indexer_url), ("embedder", settings.embedder_url))}
        return cls(query_pb2_grpc.QueryStub(channels["query"]), indexer_pb2_grpc.IndexerStub(channels["indexer"]),
                   embedder_pb2_grpc.EmbedderStub(channels["embedder"]), channels)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


class Gateway:
    def __init__(self, settings: GatewaySettings, backends: Backends, store: ObjectStore, keys: KeyFile,
                 limiter: RateLimiter, uploads: UploadLedger):
        self.settings = settings
        self.backends = backends
        self.store = store
        self.keys = keys
        self.limiter = limiter
        self.uploads = uploads
        self._dataset_names: tuple[float, frozenset[str]] | None = None
        self._recent_thumbnails = RecentThumbnails(settings.thumbnail_memory_bytes, settings.thumbnail_memory_ttl_s)
        # Storage calls block: a pool of their own, so slow ones never hold up other work.
        self._storage = ThreadPoolExecutor(settings.storage_threads, thread_name_prefix="storage")

    async def _in_storage_pool(self, call, *args):
        return await asyncio.get_running_loop().run_in_executor(self._storage, call, *args)

    async def admit(self, authorization: str | None, client: str, bulk: bool = False) -> Principal:
        """Who is calling (401 for a missing or unknown key), within their rate (429). Bulk
        requests (image fetches, file uploads) count against a budget of their own,
        VIZSEARCH_BULK_RATE_LIMIT_FACTOR times the key's."""
        try:
            principal = self.keys.authenticate(authorization) if self.settings.auth_enabled else ANONYMOUS
        except AuthError as error:
            raise from_auth(error) from error
        limit = principal.rate_limit_per_minute
        if limit is None:
            limit = self.limiter.per_minute
        if bulk:
            limit *= self.settings.bulk_rate_limit_factor
        who = principal.name if self.settings.auth_enabled else client
        try:
            wait = await self.limiter.retry_after(f"{who}:bulk" if bulk else who, limit)
        except redis.RedisError as error:  # a safeguard: Redis down must not stop search
            logger.warning("rate limiter unavailable: %s", error)
            wait = 0
        if wait:
            raise GatewayError(429, f"rate limit of {limit} {'bulk ' if bulk else ''}requests per minute reached",
                               retry_after=wait)
        return principal

    async def _call(self, backend: str, method, request, timeout: float | None = None):
        try:
            return await method(request, timeout=timeout or self.settings.backend_timeout_s)
        except grpc.aio.AioRpcError as error:
            detail = error.details() or error.code().name
            if http_status(error.code()) >= 500:
                detail = f"{backend}: {error.code().name}: {detail}"
            raise GatewayError.from_code(error.code(), detail) from error

    # -- reads -----------------------------------------------------------
    async def model(self, principal: Principal):
        return await self._call("embedder", self.backends.embedder.GetModelInfo, embedder_pb2.GetModelInfoRequest())

    async def search(self, principal: Principal, request: query_pb2.SearchRequest) -> query_pb2.SearchResponse:
        try:
            scoped = principal.scope(list(request.filters.datasets))
            self._check_refs(principal, request.query, "query")
        except AuthError as error:
            raise from_auth(error) from error
        await self._check_datasets_exist(list(request.filters.datasets))
        if principal.datasets is not None and not scoped:
            return query_pb2.SearchResponse(model=await self.model(principal))
        scoped_request = query_pb2.SearchRequest()
        scoped_request.CopyFrom(request)
        del scoped_request.filters.datasets[:]
        scoped_request.filters.datasets.extend(scoped)
        reply = await self._call("query", self.backends.query.Search, scoped_request)
        await self._drop_deleted(reply)
        return reply

    async def _drop_deleted(self, reply: query_pb2.SearchResponse) -> None:
        """Results of a dataset that no longer exists (deleted while a batch wrote, and not yet
        removed from Milvus) are never shown."""
        datasets = {r.dataset for r in reply.results}
        if datasets <= await self._known_datasets():
            return
        known = await self._known_datasets(fresh=True)
        if ghosts := datasets - known:
            logger.warning("dropped results of deleted datasets: %s", ", ".join(sorted(ghosts)))
            kept = [r for r in reply.results if r.dataset in known]
            del reply.results[:]
            reply.results.extend(kept)

    def _check_refs(self, principal: Principal, term: query_pb2.QueryTerm, path: str) -> None:
        """Query images named by reference must be visible to the key too."""
        kind = term.WhichOneof("kind")
        if kind in ("image", "object"):
            image = getattr(term, kind)
            if image.WhichOneof("source") == "ref":
                principal.check_dataset(image.ref.dataset)
            elif image.WhichOneof("source") == "data" and len(image.data) > self.settings.max_image_bytes:
                raise GatewayError(413, f"{path}.{kind}.data is {len(image.data)} bytes, over the "
                                        f"{self.settings.max_image_bytes}-byte limit")
        elif kind == "all":
            for i, weighted in enumerate(term.all.terms):
                self._check_refs(principal, weighted.query, f"{path}.all[{i}].query")

    async def _check_datasets_exist(self, names: list[str]) -> None:
        if not names:
            return
        known = await self._known_datasets()
        missing = [n for n in names if n not in known]
        if missing:
            known = await self._known_datasets(fresh=True)
            missing = [n for n in names if n not in known]
        if missing:
            raise GatewayError(404, f"no dataset {missing[0]!r}")

    async def _known_datasets(self, fresh: bool = False) -> frozenset[str]:
        cached = self._dataset_names
        if not fresh and cached and time.monotonic() - cached[0] < _DATASET_NAMES_TTL_S:
            return cached[1]
        reply = await self._call("indexer", self.backends.indexer.ListDatasets,
                                 indexer_pb2.ListDatasetsRequest(names_only=True))
        names = frozenset(d.name for d in reply.datasets)
        self._dataset_names = (time.monotonic(), names)
        return names

    async def embed_texts(self, principal: Principal, request: embedder_pb2.EmbedTextsRequest):
        return await self._call("embedder", self.backends.embedder.EmbedTexts, request)

    async def embed_images(self, principal: Principal, request: embedder_pb2.EmbedImagesRequest):
        for i, image in enumerate(request.images):
            if image.WhichOneof("source") == "ref":
                self._check(principal.check_dataset, image.ref.dataset)
            elif len(image.data) > self.settings.max_image_bytes:
                raise GatewayError(413, f"images[{i}].data is {len(image.data)} bytes, over the "
                                        f"{self.settings.max_image_bytes}-byte limit")
        checked = embedder_pb2.EmbedImagesRequest(images=request.images, fail_on_item_error=True)
        return await self._call("embedder", self.backends.embedder.EmbedImages, checked)

    async def list_datasets(self, principal: Principal) -> indexer_pb2.ListDatasetsResponse:
        reply = await self._call("indexer", self.backends.indexer.ListDatasets, indexer_pb2.ListDatasetsRequest())
        visible = [d for d in reply.datasets if principal.can_see(d.name)]
        return indexer_pb2.ListDatasetsResponse(datasets=visible)

    async def get_dataset(self, principal: Principal, name: str) -> indexer_pb2.Dataset:
        self._check(principal.check_dataset, name)
        return await self._call("indexer", self.backends.indexer.GetDataset, indexer_pb2.GetDatasetRequest(name=name))

    async def get_job(self, principal: Principal, job_id: str) -> indexer_pb2.Job:
        job = await self._call("indexer", self.backends.indexer.GetJob, indexer_pb2.GetJobRequest(id=job_id))
        if not principal.can_see(job.dataset):
            raise GatewayError(404, f"no job {job_id!r}")  # its dataset's existence is not leaked either
        return job

    async def list_jobs(self, principal: Principal, request: indexer_pb2.ListJobsRequest) -> indexer_pb2.ListJobsResponse:
        if request.dataset:
            self._check(principal.check_dataset, request.dataset)
        reply = await self._call("indexer", self.backends.indexer.ListJobs, request)
        return indexer_pb2.ListJobsResponse(jobs=[j for j in reply.jobs if principal.can_see(j.dataset)])

    async def image(self, principal: Principal, dataset: str, key: str) -> tuple[str, int, AsyncIterator[bytes]]:
        """The stored image: its content type, size and a stream of its bytes."""
        check_image_path(dataset, key)
        self._check(principal.check_dataset, dataset)
        response = await self._storage_call(self.store.open, dataset, key)

        async def chunks():
            try:
                while data := await self._in_storage_pool(response.read, IMAGE_CHUNK_BYTES):
                    yield data
            finally:
                response.close()
                response.release_conn()

        headers = response.headers
        return headers.get("Content-Type", "application/octet-stream"), int(headers.get("Content-Length", 0)), chunks()

    async def thumbnail(self, principal: Principal, dataset: str, key: str, size: int, box: images.Box | None,
                        image_format: str, if_none_match: str | None = None) -> Thumbnail:
        """A thumbnail of the stored image (or of a box's region): the grid's size was rendered
        at ingestion; any other is rendered on first request; both are kept in the bucket
        (services/common/thumbnails.py). `data` is empty when if_none_match matches."""
        check_image_path(dataset, key)
        self._check(principal.check_dataset, dataset)
        if not MIN_THUMBNAIL <= size <= MAX_THUMBNAIL:
            raise GatewayError(422, f"size is {size}: give {MIN_THUMBNAIL} to {MAX_THUMBNAIL} pixels")
        if image_format not in images.THUMBNAIL_FORMATS:
            raise GatewayError(422, f"format is {image_format!r}: give webp or jpeg")
        content_type = images.THUMBNAIL_FORMATS[image_format][1]
        request = (dataset, key, size, box, image_format)
        if (kept := self._recent_thumbnails.get(request)) is not None:
            return Thumbnail(content_type, b"", kept.etag) if _matches(if_none_match, kept.etag) else kept
        stat = await self._storage_call(self.store.stat, dataset, key)
        name = thumbnails.name(dataset, key, signature(stat.size or 0, stat.etag or "", stat.last_modified), size, box,
                               image_format)
        etag = f'"{name}"'
        if _matches(if_none_match, etag):
            return Thumbnail(content_type, b"", etag)
        try:
            cached = await self._storage_call(self.store.fetch, thumbnails.PREFIX, name, self.settings.max_image_bytes)
            return self._recent_thumbnails.put(request, Thumbnail(content_type, cached.data, etag))
        except GatewayError as error:
            if error.status != 404:
                raise
        original = await self._storage_call(self.store.fetch, dataset, key, self.settings.max_image_bytes)
        try:
            data = await self._in_storage_pool(images.thumbnail, original.data, size, box, image_format,
                                               self.settings.max_image_pixels, self.settings.max_decoded_bytes)
        except images.BadImage as error:
            raise GatewayError(422, f"{dataset}/{key}: {error}") from error
        try:
            await self._in_storage_pool(self.store.put, thumbnails.PREFIX, name, data, content_type)
        except Exception as error:  # noqa: BLE001 - a cache that cannot be written costs a render, nothing more
            logger.warning("thumbnail not kept: %s", error)
        return self._recent_thumbnails.put(request, Thumbnail(content_type, data, etag))

    async def thumbnails(self, principal: Principal, items: list[tuple[str, str, int, images.Box | None, str]]
                         ) -> list["Thumbnail | GatewayError"]:
        """Many thumbnails at once (a page of results: one request, not fifty), each its own
        thumbnail or its own error; items are (dataset, key, size, box, format)."""
        if not 1 <= len(items) <= MAX_THUMBNAILS_PER_CALL:
            raise GatewayError(422, f"images has {len(items)} items: give 1 to {MAX_THUMBNAILS_PER_CALL}")

        async def one(item):
            try:
                return await self.thumbnail(principal, *item)
            except GatewayError as error:
                if error.status in (401, 403) or error.status >= 500:
                    raise  # the caller's rights, or a backend down: the whole call says so
                return error

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def _storage_call(self, call, dataset: str, key: str, *args):
        try:
            return await self._in_storage_pool(call, dataset, key, *args)
        except ObjectNotFound as error:
            raise GatewayError(404, f"no image {key!r} in dataset {dataset!r}") from error
        except ObjectTooLarge as error:
            raise GatewayError(413, str(error)) from error
        except S3Error as error:
            raise GatewayError(503, f"object storage: {error.code}") from error
        except Exception as error:
            raise GatewayError(503, f"object storage: {error}") from error

    async def image_url(self, principal: Principal, dataset: str, key: str) -> str:
        check_image_path(dataset, key)
        self._check(principal.check_dataset, dataset)
        return await self._in_storage_pool(self.store.client.presigned_get_object, self.store.bucket,
                                           object_name(dataset, key), timedelta(seconds=self.settings.presign_ttl_s))

    # -- uploads -----------------------------------------------------------
    async def check_files(self, principal: Principal, dataset: str, files: list[tuple[str, int, str]]
                          ) -> tuple[list[str], list[str]]:
        """Of (key, size, sha256), which must be uploaded and which are stored unchanged."""
        self._check_upload(principal, dataset, [key for key, _, _ in files])
        recorded = await self._uploads_call(lambda: self.uploads.recorded(dataset, [key for key, _, _ in files]))
        candidates = [(key, size) for key, size, sha in files if recorded.get(key, ("",))[0] == sha]

        async def still_there(key: str, size: int) -> bool:
            try:
                stat = await self._storage_call(self.store.stat, dataset, key)
            except GatewayError as error:
                if error.status == 404:
                    return False
                raise
            return stat.size == size and recorded[key][1] == signature(stat.size, stat.etag or "", stat.last_modified)

        kept = await asyncio.gather(*(still_there(key, size) for key, size in candidates))
        unchanged = {key for (key, _), same in zip(candidates, kept) if same}
        return [key for key, _, _ in files if key not in unchanged], [key for key, _, _ in files if key in unchanged]

    async def put_file(self, principal: Principal, dataset: str, key: str, chunks: AsyncIterator[bytes],
                       content_type: str) -> tuple[int, str]:
        """Stores a file under the dataset, hashing it on the way; returns its size and sha256."""
        self._check_upload(principal, dataset, [key])
        digest, size = hashlib.sha256(), 0
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
            async for chunk in chunks:
                digest.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            spool.seek(0)
            await self._storage_call(lambda d, k: self.store.put_stream(d, k, spool, size, content_type), dataset, key)
        stat = await self._storage_call(self.store.stat, dataset, key)
        sha = digest.hexdigest()
        stored = signature(stat.size or 0, stat.etag or "", stat.last_modified)
        await self._uploads_call(lambda: self.uploads.record(dataset, key, sha, stored))
        return size, sha

    def _check_upload(self, principal: Principal, dataset: str, keys: list[str]) -> None:
        self._check(principal.require, "write")
        try:
            check_dataset_name(dataset)
            for key in keys:
                check_key(dataset, key)
        except ValueError as error:
            raise GatewayError(422, str(error)) from error
        self._check(principal.check_dataset, dataset)

    @staticmethod
    async def _uploads_call(call: Callable[[], Awaitable]):
        """call(), once more if the connection it used was broken (Redis restarted or stalled)."""
        for attempt in range(2):
            try:
                return await call()
            except redis.ConnectionError as error:
                if attempt:
                    raise GatewayError(503, f"Redis: {error}") from error
            except redis.RedisError as error:
                raise GatewayError(503, f"Redis: {error}") from error

    # -- writes ----------------------------------------------------------
    async def scan(self, principal: Principal, name: str) -> indexer_pb2.Job:
        self._check(principal.require, "write")
        self._check(principal.check_dataset, name)
        return await self._call("indexer", self.backends.indexer.ScanDataset, indexer_pb2.ScanDatasetRequest(name=name))

    async def find_duplicates(self, principal: Principal, request: indexer_pb2.FindDuplicatesRequest
                              ) -> indexer_pb2.Job:
        self._check(principal.require, "write")
        for name in (request.dataset, *request.against):
            self._check(principal.check_dataset, name)
        return await self._call("indexer", self.backends.indexer.FindDuplicates, request)

    async def duplicates(self, principal: Principal, request: indexer_pb2.GetDuplicatesRequest
                         ) -> indexer_pb2.GetDuplicatesResponse:
        self._check(principal.check_dataset, request.dataset)
        reply = await self._call("indexer", self.backends.indexer.GetDuplicates, request)
        if not all(principal.can_see(name) for name in reply.job.duplicates.datasets):
            # compared with a dataset this key may not see: neither it nor its images are shown
            raise GatewayError(404, f"no duplicates job of dataset {request.dataset!r} that this key may read")
        return reply

    async def find_suspects(self, principal: Principal, request: indexer_pb2.FindSuspectLabelsRequest
                            ) -> indexer_pb2.Job:
        self._check(principal.require, "write")
        self._check(principal.check_dataset, request.dataset)
        return await self._call("indexer", self.backends.indexer.FindSuspectLabels, request)

    async def suspects(self, principal: Principal, request: indexer_pb2.GetSuspectLabelsRequest
                       ) -> indexer_pb2.GetSuspectLabelsResponse:
        self._check(principal.check_dataset, request.dataset)
        return await self._call("indexer", self.backends.indexer.GetSuspectLabels, request)

    async def make_map(self, principal: Principal, request: indexer_pb2.MakeMapRequest) -> indexer_pb2.Job:
        self._check(principal.require, "write")
        self._check(principal.check_dataset, request.dataset)
        return await self._call("indexer", self.backends.indexer.MakeMap, request)

    async def map(self, principal: Principal, request: indexer_pb2.GetMapRequest) -> indexer_pb2.GetMapResponse:
        self._check(principal.check_dataset, request.dataset)
        return await self._call("indexer", self.backends.indexer.GetMap, request)

    async def delete_dataset(self, principal: Principal, name: str) -> indexer_pb2.DeleteDatasetResponse:
        self._check(principal.require, "admin")
        self._check(principal.check_dataset, name)
        reply = await self._call("indexer", self.backends.indexer.DeleteDataset,
                                 indexer_pb2.DeleteDatasetRequest(name=name), timeout=self.settings.delete_timeout_s)
        self._dataset_names = None  # this replica forgets it at once
        await self._uploads_call(lambda: self.uploads.forget(name))
        return reply

    @staticmethod
    def _check(check, argument) -> None:
        try:
            check(argument)
        except AuthError as error:
            raise from_auth(error) from error

    # -- health ----------------------------------------------------------
    async def unready_backends(self) -> list[str]:
        """Backends whose gRPC health is not SERVING (each says so while one of its own is down)."""
        return await readiness.down({name: functools.partial(readiness.grpc_serving, channel)
                                     for name, channel in self.backends.channels.items()})
