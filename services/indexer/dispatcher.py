"""Sends planned units of work to the broker, a window at a time.

The window is twice the slots of the live workers (each worker registers its
concurrency while it runs): every slot has a unit running and one waiting, so the
queue stays short (the sweeper reads it whole) and a dataset dropped now waits for
one unit of each job already waiting (round robin), not for everything queued before
it. Both sides dispatch: the indexer when it plans a job, each worker when it commits a
unit, and the sweeper on every pass.
"""

import logging

import prometheus_client
from celery import Celery

from services.common import tracing
from services.indexer.celery_app import send_unit
from services.indexer.state import IndexerState

logger = logging.getLogger(__name__)

MIN_WINDOW = 2  # with no worker alive, a couple of units wait for the first one
SENT = prometheus_client.Counter("vizsearch_ingest_units_sent_total", "Units of work sent to the workers.")


class Dispatcher:
    def __init__(self, state: IndexerState, app: Celery):
        self.state = state
        self.app = app

    def window(self) -> int:
        return max(MIN_WINDOW, 2 * self.state.work.worker_slots())

    def dispatch(self) -> int:
        """Sends what the window has room for; returns how many units were sent."""
        taken = self.state.work.take(self.window())
        for job_id, unit in taken:
            dataset, trace = self.state.jobs.routing(job_id)
            if dataset:  # else the job was forgotten with its dataset: the sweeper clears the unit
                with tracing.continued(trace):
                    send_unit(self.app, job_id, dataset, unit)
        SENT.inc(len(taken))
        return len(taken)
