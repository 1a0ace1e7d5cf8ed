"""Finds work that was lost and puts it back, every few seconds (the indexer runs it).

- A unit in flight that is neither waiting in the broker's queue nor leased by a
  worker, for VIZSEARCH_TASK_LOST_AFTER_S, was lost: its worker died (its lease ran
  out) or its message was. It goes back to the front of its job's list. A worker
  killed mid-batch thus delays its batch by about a lease, not by the broker's
  visibility timeout.
- An unfinished job with no unit left and no progress for VIZSEARCH_JOB_STALLED_AFTER_S
  lost work the ledger cannot name (Redis lost writes): it fails with that reason,
  which frees its dataset for the next reconcile.
"""

import logging
import time

import prometheus_client

from services.common import logs
from services.indexer.celery_app import queued_units
from services.indexer.dispatcher import Dispatcher
from services.indexer.jobs import FINISHED
from services.indexer.state import IndexerState

logger = logging.getLogger(__name__)

BACKLOG = prometheus_client.Gauge("vizsearch_ingest_backlog_units", "Units of work planned and not yet sent.")
IN_FLIGHT = prometheus_client.Gauge("vizsearch_ingest_in_flight_units", "Units of work sent or running.")
LOST = prometheus_client.Counter("vizsearch_ingest_units_lost_total", "Units of work found lost and sent again.")
STALLED = prometheus_client.Counter("vizsearch_ingest_jobs_stalled_total", "Jobs failed because their work was lost.")


class Sweeper:
    def __init__(self, state: IndexerState, dispatcher: Dispatcher):
        self.state = state
        self.dispatcher = dispatcher
        self._unaccounted_since: dict[str, float] = {}

    def sweep(self) -> None:
        self._requeue_lost()
        self._fail_stalled_jobs()
        self.dispatcher.dispatch()
        BACKLOG.set(self.state.work.backlog())
        IN_FLIGHT.set(len(self.state.work.in_flight()))

    def _requeue_lost(self) -> None:
        work, now = self.state.work, time.monotonic()
        unaccounted = set(work.unaccounted(queued_units(self.state.redis)))
        since = {f: t for f, t in self._unaccounted_since.items() if f in unaccounted}
        for unit in unaccounted:
            first = since.setdefault(unit, now)
            if now - first >= self.state.settings.task_lost_after_s and work.requeue(unit):
                del since[unit]
                LOST.inc()
                logs.log(logger, logging.WARNING, "unit lost (its worker died or its message was lost): sent again",
                         unit=unit, unaccounted_s=round(now - first, 1))
        self._unaccounted_since = since

    def _fail_stalled_jobs(self) -> None:
        jobs, stalled_after = self.state.jobs, self.state.settings.job_stalled_after_s
        for job_id in jobs.open_jobs():
            if self.state.work.units_left(job_id):
                continue
            updated = jobs.updated_at(job_id)
            if updated is None or time.time() - updated < stalled_after:
                continue
            if jobs.maybe_finish(job_id) in FINISHED:
                continue
            jobs.fail(job_id, f"its work was lost: nothing of it is planned, sent or running, and it made no "
                              f"progress for {stalled_after:.0f}s (the next scan picks its images up)")
            STALLED.inc()
            logs.log(logger, logging.WARNING, "job stalled: failed", job=job_id)
