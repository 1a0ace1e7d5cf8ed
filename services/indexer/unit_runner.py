"""Runs one unit of work in a worker: claim it, hold its lease, do it with retries,
commit its results, and keep the workers fed.

Failures, and what each costs:
- A backend away (embedder, Milvus, object storage): retried with backoff while the
  lease is held; after VIZSEARCH_TASK_MAX_RETRIES a batch's keys are committed as
  failed (the next scan tries them again), a plan fails its job with the reason.
- Redis away or loading: nothing can be recorded, so nothing is given up or
  acknowledged either. The unit is retried once Redis answers (the lease is taken
  back if it lapsed and nobody else took it); past VIZSEARCH_REDIS_WAIT_S the task
  ends and the sweeper sends the unit again.
- The unit cancelled (its dataset deleted) or taken over (this worker stalled past
  its lease): it stops before writing, or commits nothing and removes what it wrote.
- A bug: a batch's keys are committed as failed with the error, a scan fails its job.

An analysis job's units (services/indexer/analysis.py) fare the same: its plan as a
scan's, its batches as ingestion batches.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from services.common import logs
from services.indexer.analysis import Analysis, analysis_of, batch_entries
from services.indexer.dispatcher import Dispatcher
from services.indexer.ingest import Cancelled, Ingestor
from services.indexer.state import IndexerState, Transient
from services.indexer.work import SCAN_UNIT, Claim, Results, WorkLedger, batch_keys

logger = logging.getLogger(__name__)


class GaveUp(Exception):
    pass


class RedisAway(Exception):
    pass


@dataclass
class Lease:
    job_id: str
    unit: str
    token: str
    lost: threading.Event = field(default_factory=threading.Event)


class LeaseKeeper:
    """Renews, from one thread, the leases this worker process holds and its
    registration (how many units it can run at once)."""

    def __init__(self, work: WorkLedger, worker_name: str, slots: int, lease_s: float):
        self.work = work
        self.worker_name = worker_name
        self.slots = slots
        self.interval_s = lease_s / 3
        self._held: dict[tuple[str, str], Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.work.unregister_worker(self.worker_name)
        except redis.RedisError:
            pass  # its registration runs out by itself

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[(lease.job_id, lease.unit)] = lease

    def drop(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop((lease.job_id, lease.unit), None)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.renew_all()
                wait = self.interval_s
            except redis.RedisError as error:  # Redis away: try again soon, so the leases are back quickly
                logs.log(logger, logging.WARNING, "cannot renew leases", error=str(error))
                wait = 1.0
            self._stop.wait(wait)

    def renew_all(self) -> None:
        self.work.register_worker(self.worker_name, self.slots, ttl_s=self.interval_s * 3)
        with self._lock:
            held = list(self._held.values())
        for lease in held:
            if not lease.lost.is_set() and not self.work.renew(lease.job_id, lease.unit, lease.token):
                lease.lost.set()
                logs.log(logger, logging.WARNING, "lease lost: the unit was cancelled or taken over",
                         job=lease.job_id, unit=lease.unit)


class UnitRunner:
    def __init__(self, state: IndexerState, ingestor: Ingestor, analyses: dict[str, Analysis], dispatcher: Dispatcher,
                 keeper: LeaseKeeper, sleep: Callable[[float], None] = time.sleep):
        """analyses: job kind -> what runs its units."""
        self.state = state
        self.settings = state.settings
        self.work = state.work
        self.ingestor = ingestor
        self.analyses = analyses
        self.dispatcher = dispatcher
        self.keeper = keeper
        self._sleep = sleep

    def run(self, job_id: str, dataset: str, unit: str) -> None:
        token = WorkLedger.new_token()
        status, payload = self._redis(lambda: self.work.claim(job_id, unit, token))
        if status == Claim.GONE:
            logs.log(logger, logging.INFO, "unit already committed or cancelled", job=job_id, unit=unit)
        elif status == Claim.BUSY:
            logs.log(logger, logging.INFO, "unit held by another worker", job=job_id, unit=unit)
        else:
            lease = Lease(job_id, unit, token)
            self.keeper.hold(lease)
            try:
                analysis = analysis_of(unit)
                if unit == SCAN_UNIT:
                    self._plan(lease, dataset, lambda: self.ingestor.scan(lease.job_id, dataset))
                elif analysis is None:
                    self._batch(lease, dataset, payload)
                elif analysis[1]:
                    self._plan(lease, dataset, lambda: self.analyses[analysis[0]].plan(lease.job_id, dataset))
                else:
                    self._compare(lease, dataset, payload, self.analyses[analysis[0]])
            except Cancelled:
                logs.log(logger, logging.INFO, "unit cancelled or taken over: stopped", job=job_id, unit=unit)
                self._redis(lambda: self.work.release(job_id, unit, token))
            finally:
                self.keeper.drop(lease)
        self._redis(self.dispatcher.dispatch)

    # -- the kinds of unit -----------------------------------------------------
    def _plan(self, lease: Lease, dataset: str, plan: Callable[[], Results | None]) -> None:
        """A scan, or an analysis job's plan: the job's size and its units."""
        def attempt():
            return plan(), self.state.model().version

        try:
            results, version = self._with_retries(lease, attempt)
        except GaveUp as error:
            if self._redis(lambda: self.state.jobs.discard_if_reconcile(lease.job_id)):
                # A periodic pass that could not reach a backend leaves no job: the next pass tries again.
                logs.log(logger, logging.WARNING, "reconcile dropped: a backend is away", dataset=dataset,
                         error=str(error))
                self._redis(lambda: self.work.cancel([lease.job_id]))
                return
            return self._end_job(lease, f"scan failed: {error}")
        except (Cancelled, RedisAway):
            raise
        except Exception as error:  # a bug, not bad input: the job ends with it, the worker goes on
            logger.exception("planning %s of %s failed", lease.unit, dataset)
            return self._end_job(lease, f"internal error: {error}")
        if results is None:  # nothing to do: the job was forgotten
            self._redis(lambda: self.work.cancel([lease.job_id]))
            return
        results.version = version
        self._commit(lease, dataset, results)

    def _batch(self, lease: Lease, dataset: str, payload: str) -> None:
        keys = batch_keys(payload)
        written = None
        try:
            results, written = self._with_retries(
                lease, lambda: self.ingestor.index(dataset, keys, self._check_wanted(lease)))
        except GaveUp as error:
            results = Ingestor.failed(keys, f"gave up after {self.settings.task_max_retries} retries: {error}")
        except (Cancelled, RedisAway):
            raise
        except Exception as error:  # a bug, not bad input: record it, keep the worker and the job going
            logger.exception("batch of %d keys of %s failed", len(keys), dataset)
            results = Ingestor.failed(keys, f"internal error: {error}")
        if written is not None:
            results.version = written.version
        if self._commit(lease, dataset, results) == 0 and written is not None:
            # Cancelled after the vectors were written (the dataset was deleted meanwhile): take them back.
            self._with_retries(None, lambda: self.ingestor.undo(written))

    def _compare(self, lease: Lease, dataset: str, payload: str, analysis: Analysis) -> None:
        """A batch of an analysis job: its findings, or its entries recorded as failed."""
        try:
            results = self._with_retries(lease, lambda: analysis.compare(lease.job_id, dataset, payload,
                                                                         self._check_wanted(lease)))
        except GaveUp as error:
            results = Ingestor.failed([key for _, key in batch_entries(payload)],
                                      f"gave up after {self.settings.task_max_retries} retries: {error}")
        except (Cancelled, RedisAway):
            raise
        except Exception as error:  # a bug: recorded against the batch's entries, the job goes on
            logger.exception("analysis batch %s of %s failed", lease.unit, dataset)
            results = Ingestor.failed([key for _, key in batch_entries(payload)], f"internal error: {error}")
        self._commit(lease, dataset, results)

    def _check_wanted(self, lease: Lease) -> Callable[[], None]:
        def check_wanted() -> None:
            if lease.lost.is_set() or not self.work.wanted(lease.job_id, lease.unit):
                raise Cancelled()
        return check_wanted

    def _commit(self, lease: Lease, dataset: str, results: Results) -> int:
        keys = self.state.commit_keys(lease.job_id, results.version, dataset)
        status = self._redis(lambda: self.work.commit(lease.job_id, lease.unit, lease.token, keys, results))
        if status == 1:
            self._redis(lambda: self.state.jobs.maybe_finish(lease.job_id))
        elif status == -1:
            logs.log(logger, logging.WARNING, "unit taken over by another worker: its results are that worker's",
                     job=lease.job_id, unit=lease.unit)
        return status

    def _end_job(self, lease: Lease, reason: str) -> None:
        logs.log(logger, logging.ERROR, "job failed", job=lease.job_id, reason=reason)
        self._redis(lambda: self.state.jobs.fail(lease.job_id, reason))
        self._redis(lambda: self.work.cancel([lease.job_id]))

    # -- retries -------------------------------------------------------------
    def backoff_s(self, retries: int) -> float:
        return min(self.settings.task_retry_backoff_max_s, 2 ** retries) * random.uniform(0.5, 1.0)

    def _with_retries(self, lease: Lease | None, attempt: Callable):
        """attempt(), retried with backoff while backends are away (see the module's docstring)."""
        retries, redis_away_since = 0, None
        while True:
            if lease is not None and lease.lost.is_set():
                raise Cancelled()
            try:
                return attempt()
            except Transient as error:
                if retries >= self.settings.task_max_retries:
                    raise GaveUp(str(error)) from error
                wait = self.backoff_s(retries)
                retries += 1
                logs.log(logger, logging.WARNING, f"retrying in {wait:.1f}s: {error}", retry=retries)
            except redis.RedisError as error:
                redis_away_since = redis_away_since or time.monotonic()
                wait = self._redis_wait(redis_away_since, error)
            self._sleep(wait)

    def _redis(self, call: Callable):
        """call(), waiting out Redis being away or loading (up to VIZSEARCH_REDIS_WAIT_S)."""
        away_since = None
        while True:
            try:
                return call()
            except redis.RedisError as error:
                away_since = away_since or time.monotonic()
                self._sleep(self._redis_wait(away_since, error))

    def _redis_wait(self, away_since: float, error: Exception) -> float:
        away_s = time.monotonic() - away_since
        if away_s > self.settings.redis_wait_s:
            raise RedisAway(f"Redis away for {away_s:.0f}s: {error}") from error
        logs.log(logger, logging.WARNING, "Redis unavailable: waiting", error=str(error), away_s=round(away_s, 1))
        return min(2.0, 0.25 * 2 ** int(away_s))
