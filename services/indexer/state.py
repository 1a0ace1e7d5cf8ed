"""What the indexer's two sides share: the control side (the API, the webhook, the
reconciler and the sweeper, in `python -m services.indexer`) and the work side (the
Celery workers, `python -m services.indexer.worker`). Both reach Redis (catalog, jobs,
work ledger), object storage, Milvus and the embedder's model information through
one IndexerState, and nothing else of each other.
"""

import logging
import threading

import grpc
import redis
from pymilvus.exceptions import MilvusException

from services.common import grpc_client
from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.common.storage import ObjectStore
from services.common.vectors import VectorStore
from services.common.wire import ModelInfoCache
from services.indexer.catalog import Catalog
from services.indexer.config import IndexerSettings
from services.indexer.jobs import JobStore
from services.indexer.work import CommitKeys, WorkLedger

logger = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED,
})


class Transient(RuntimeError):
    """A backend is unavailable: the work is retried later, with backoff."""


class IndexerState:
    def __init__(self, settings: IndexerSettings):
        self.settings = settings
        # A stalled Redis must not hang a thread for ever: its calls time out and are retried.
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_s,
                                          socket_connect_timeout=settings.redis_timeout_s, health_check_interval=5)
        self.store = ObjectStore(settings)
        self.catalog = Catalog(self.redis, settings.box_margin)
        self.jobs = JobStore(self.redis, settings.job_history)
        self.work = WorkLedger(self.redis, settings.task_lease_s)
        self._channel = grpc_client.blocking_channel(settings.embedder_url, settings.internal_token)
        self.embedder = embedder_pb2_grpc.EmbedderStub(self._channel)
        self._vectors: VectorStore | None = None
        self._model = ModelInfoCache()
        self._lock = threading.Lock()

    @property
    def vectors(self) -> VectorStore:
        with self._lock:
            if self._vectors is None:
                try:
                    self._vectors = VectorStore(self.settings)
                except MilvusException as error:
                    raise Transient(f"Milvus is unavailable: {error}") from error
            return self._vectors

    def model(self) -> common_pb2.ModelInfo:
        """The model the embedder serves now (re-read every 30 s, so a model switch is noticed),
        with its collections ready."""
        info = self._model.fresh()
        if info is not None:
            return info
        info = self.embed_call(self.embedder.GetModelInfo, embedder_pb2.GetModelInfoRequest())
        try:
            self.vectors.ensure_collections(info.version, info.dimension)
        except MilvusException as error:
            raise Transient(f"Milvus is unavailable: {error}") from error
        return self._model.keep(info)

    def embed_call(self, method, request):
        try:
            return method(request, timeout=self.settings.embed_timeout_s)
        except grpc.RpcError as error:
            if error.code() in TRANSIENT_CODES:
                raise Transient(f"embedder: {error.code().name}: {error.details()}") from error
            raise

    def commit_keys(self, job_id: str, version: str, dataset: str) -> CommitKeys:
        job, done, skipped, failed, problems = self.jobs.record_keys(job_id)
        return CommitKeys(job, done, skipped, failed, problems, self.catalog.manifest_key(version, dataset),
                          self.catalog.failed_key(version, dataset), self.jobs.findings_key(job_id))

    def close(self) -> None:
        self._channel.close()
        if self._vectors is not None:
            self._vectors.close()
        self.redis.close()
