"""The Celery tasks, run by `python -m services.indexer.worker`.

Delivery is at least once: tasks take small arguments (a job id, a dataset,
keys), are idempotent, and are acknowledged only once done (acks_late). A
worker that dies mid-task leaves its message unacknowledged; Redis hands it to
another worker after VIZSEARCH_TASK_VISIBILITY_TIMEOUT_S. Transient failures
(embedder, Milvus or storage unavailable) retry with exponential backoff;
after the last retry the batch's keys are recorded as failed so the job ends.
"""

import logging
import random
import threading

from celery import Celery

from services.indexer.config import IndexerSettings
from services.indexer.ingest import Ingestor, Transient

logger = logging.getLogger(__name__)

SCAN_TASK = "vizsearch.scan_dataset"
INDEX_TASK = "vizsearch.index_batch"
QUEUE = "vizsearch.ingest"

settings = IndexerSettings()
app = Celery("vizsearch", broker=settings.redis_url)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,  # a worker lost mid-task: the message goes back, not away
    worker_prefetch_multiplier=1,  # a dead worker holds at most its running tasks hostage
    broker_transport_options={
        "visibility_timeout": settings.task_visibility_timeout_s,
        # Every worker looks for messages past their visibility timeout this often
        # (kombu's default scans only every 10th sweep: 100 s).
        "unacked_restore_interval": max(1, min(10, settings.task_visibility_timeout_s // 3)),
        "unacked_restore_throttle": 1,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)

_ingestor: Ingestor | None = None
_lock = threading.Lock()


def ingestor() -> Ingestor:
    """One per worker process, made on first use (after any fork)."""
    global _ingestor
    with _lock:
        if _ingestor is None:
            _ingestor = Ingestor(settings)
        return _ingestor


def _backoff_s(retries: int) -> float:
    return min(settings.task_retry_backoff_max_s, 2 ** retries) * random.uniform(0.5, 1.0)


def _retry_or_give_up(task, error: Exception, give_up) -> None:
    if task.request.retries >= settings.task_max_retries:
        logger.error("giving up after %d retries: %s", task.request.retries, error)
        give_up(f"gave up after {task.request.retries} retries: {error}")
        return
    countdown = _backoff_s(task.request.retries)
    logger.warning("retrying in %.1fs: %s", countdown, error)
    raise task.retry(exc=error, countdown=countdown, max_retries=settings.task_max_retries)


@app.task(bind=True, name=SCAN_TASK)
def scan_dataset(self, job_id: str, dataset: str) -> None:
    """Plans the job and enqueues its batches. Run twice, it enqueues the same
    batches twice, which index the same entries."""
    try:
        keys = ingestor().plan_scan(job_id, dataset)
    except Transient as error:
        _retry_or_give_up(self, error, lambda reason: ingestor().jobs.fail(job_id, reason))
        return
    except Exception as error:
        logger.exception("scan of %s failed", dataset)
        ingestor().jobs.fail(job_id, f"internal error: {error}")
        return
    enqueue_batches(job_id, dataset, keys)


@app.task(bind=True, name=INDEX_TASK)
def index_batch(self, job_id: str, dataset: str, keys: list[str]) -> None:
    try:
        ingestor().index_keys(job_id, dataset, keys)
    except Transient as error:
        _retry_or_give_up(self, error, lambda reason: ingestor().give_up(job_id, keys, reason))
    except Exception as error:  # a bug, not bad input: record it, keep the worker and the job going
        logger.exception("batch of %d keys of %s failed", len(keys), dataset)
        ingestor().give_up(job_id, keys, f"internal error: {error}")


def enqueue_batches(job_id: str, dataset: str, keys: list[str]) -> None:
    for start in range(0, len(keys), settings.batch_size):
        index_batch.delay(job_id, dataset, keys[start:start + settings.batch_size])
