"""The Celery app both sides use: the control side sends units of work by task name,
the workers register the tasks (services/indexer/worker.py).

A message names a unit of the work ledger (job, dataset, unit), never its keys: the
ledger holds the keys, and a message that arrives twice, or late, finds its unit
running (leased) or committed and does nothing.
"""

import json
import secrets

import redis
from celery import Celery

from services.indexer.config import IndexerSettings
from services.indexer.work import SCAN_UNIT, field_of

SCAN_TASK = "vizsearch.scan"
INDEX_TASK = "vizsearch.index"
QUEUE = "vizsearch.ingest"


def create_app(settings: IndexerSettings) -> Celery:
    app = Celery("vizsearch", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # a worker lost mid-task: the message goes back, not away
        worker_prefetch_multiplier=1,  # a worker reserves only what it runs
        broker_transport_options={
            # A backstop only: the indexer's sweeper re-sends a dead worker's unit within about
            # a lease; kombu redelivers its message after this, to find the unit done.
            "visibility_timeout": settings.task_visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, settings.task_visibility_timeout_s // 3)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a Redis restart is waited out, however long
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def send_unit(app: Celery, job_id: str, dataset: str, unit: str) -> None:
    """One message for one unit; its task id names the unit, so the sweeper can tell
    which units wait in the queue."""
    app.send_task(SCAN_TASK if unit == SCAN_UNIT else INDEX_TASK, args=[job_id, dataset, unit], queue=QUEUE,
                  task_id=f"{field_of(job_id, unit)}/{secrets.token_hex(4)}")


def queued_units(client: redis.Redis) -> set[str]:
    """The units (job/unit) whose messages wait in the broker's queue. The dispatcher keeps
    the queue short (about the workers' slots), so reading it whole is cheap."""
    units = set()
    for raw in client.lrange(QUEUE, 0, -1):
        try:
            task_id = json.loads(raw)["headers"]["id"]
        except (ValueError, KeyError, TypeError):
            continue
        job_id, _, rest = task_id.partition("/")
        unit = rest.rsplit("/", 1)[0]
        if job_id and unit:
            units.add(field_of(job_id, unit))
    return units
