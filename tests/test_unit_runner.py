"""A worker's handling of failures, unit by unit, against real Redis: a backend away
(an unreachable embedder), Redis away or loading, a dataset deleted mid-batch."""

import pytest
import redis

from services.common.genproto.vizsearch.v1 import indexer_pb2
from services.indexer.celery_app import create_app
from services.indexer.config import IndexerSettings
from services.indexer.dispatcher import Dispatcher
from services.indexer.duplicates import DuplicateFinder
from services.indexer.ingest import Ingestor, Written
from services.indexer.jobs import DONE, DUPLICATES, EVENT, RECONCILE, SCAN
from services.indexer.state import IndexerState, Transient
from services.indexer.unit_runner import LeaseKeeper, RedisAway, UnitRunner
from services.indexer.work import SCAN_UNIT, Results, batch_units


class Harness:
    def __init__(self, fresh_redis, **overrides):
        port = fresh_redis.connection_pool.connection_kwargs["port"]
        self.settings = IndexerSettings(embedder_url="127.0.0.1:1", redis_url=f"redis://127.0.0.1:{port}/0",
                                        embed_timeout_s=2, task_lease_s=30, **overrides)
        self.state = IndexerState(self.settings)
        self.ingestor = Ingestor(self.state)
        self.waits: list[float] = []
        keeper = LeaseKeeper(self.state.work, "test-worker", 1, self.settings.task_lease_s)
        dispatcher = Dispatcher(self.state, create_app(self.settings))
        self.runner = UnitRunner(self.state, self.ingestor, {DUPLICATES: DuplicateFinder(self.state)}, dispatcher,
                                 keeper, sleep=self.waits.append)

    def job(self, units, kind=EVENT, total=0) -> str:
        job_id = self.state.jobs.create("ds", kind)
        if total:
            self.state.jobs.plan(job_id, total=total)
        self.state.work.add(job_id, units)
        return job_id

    def close(self):
        self.ingestor.close()
        self.state.close()


@pytest.fixture
def cut_off(fresh_redis):
    """A worker whose embedder is down."""
    harness = Harness(fresh_redis)
    yield harness
    harness.close()


def test_an_unreachable_embedder_is_transient(cut_off):
    with pytest.raises(Transient, match="embedder: UNAVAILABLE"):
        cut_off.ingestor.index("ds", ["a.jpg"], lambda: None)


def test_a_batch_retries_with_backoff_then_gives_up_and_its_job_ends(cut_off):
    job_id = cut_off.job(batch_units([["a.jpg", "b.jpg"]]), total=2)
    cut_off.runner.run(job_id, "ds", "b0")
    assert len(cut_off.waits) == cut_off.settings.task_max_retries
    assert cut_off.waits[3] >= 4 and max(cut_off.waits) <= cut_off.settings.task_retry_backoff_max_s
    job = cut_off.state.jobs.get(job_id)
    assert (job.failed, job.state) == (2, indexer_pb2.JOB_STATE_COMPLETED_WITH_FAILURES)
    assert all("gave up after" in reason and "UNAVAILABLE" in reason for reason in (f.reason for f in job.failures))
    assert cut_off.state.work.units_left(job_id) == 0


def test_a_scan_that_cannot_start_fails_its_job_with_the_reason(cut_off):
    job_id = cut_off.job([(SCAN_UNIT, "")], kind=SCAN)
    cut_off.runner.run(job_id, "ds", SCAN_UNIT)
    job = cut_off.state.jobs.get(job_id)
    assert job.state == indexer_pb2.JOB_STATE_FAILED and "embedder: UNAVAILABLE" in job.error
    assert cut_off.state.work.units_left(job_id) == 0


def indexed_fine(keys):
    return Results(outcomes=[(k, DONE, "", 0) for k in keys]), Written("v1", [], [])


def test_redis_loading_mid_batch_is_waited_out_and_nothing_is_given_up(cut_off, monkeypatch):
    job_id = cut_off.job(batch_units([["a.jpg"]]), total=1)
    monkeypatch.setattr(cut_off.ingestor, "index", lambda dataset, keys, check: indexed_fine(keys))
    commit, failures = cut_off.state.work.commit, [redis.BusyLoadingError("loading"), redis.ConnectionError("down")]

    def flaky_commit(*args):
        if failures:
            raise failures.pop(0)
        return commit(*args)

    monkeypatch.setattr(cut_off.state.work, "commit", flaky_commit)
    cut_off.runner.run(job_id, "ds", "b0")
    job = cut_off.state.jobs.get(job_id)
    assert (job.state, job.done, job.failed) == (indexer_pb2.JOB_STATE_SUCCEEDED, 1, 0)
    assert len(cut_off.waits) == 2


def test_redis_away_past_the_wait_leaves_the_unit_to_the_sweeper(fresh_redis, monkeypatch):
    harness = Harness(fresh_redis, redis_wait_s=0)
    try:
        job_id = harness.job(batch_units([["a.jpg"]]), total=1)
        monkeypatch.setattr(harness.ingestor, "index", lambda dataset, keys, check: indexed_fine(keys))

        def down(*args):
            raise redis.ConnectionError("Redis is down")

        monkeypatch.setattr(harness.state.work, "commit", down)
        with pytest.raises(RedisAway):
            harness.runner.run(job_id, "ds", "b0")
        field = f"{job_id}/b0"
        assert field in harness.state.work.in_flight() and harness.state.work.units_left(job_id) == 1
        fresh_redis.delete(f"vz:work:lease:{field}")  # its lease runs out
        assert harness.state.work.unaccounted(queued=set()) == [field]
        assert harness.state.jobs.get(job_id).failed == 0, "nothing was given up"
    finally:
        harness.close()


def test_a_batch_whose_dataset_is_deleted_while_it_writes_takes_its_writes_back(cut_off, monkeypatch):
    job_id = cut_off.job(batch_units([["a.jpg"]]), total=1)
    written = Written("v1", ["image-id"], ["object-id"])
    undone = []

    def index_then_deleted(dataset, keys, check):
        check()  # still wanted when it starts writing...
        cut_off.state.work.cancel([job_id])  # ...deleted before it commits
        return Results(outcomes=[("a.jpg", DONE, "", 1)], manifest=[("a.jpg", "[]")]), written

    monkeypatch.setattr(cut_off.ingestor, "index", index_then_deleted)
    monkeypatch.setattr(cut_off.ingestor, "undo", undone.append)
    cut_off.runner.run(job_id, "ds", "b0")
    assert undone == [written]
    assert cut_off.state.jobs.get(job_id).done == 0
    assert cut_off.state.work.held([f"{job_id}/b0"]) == []


def test_a_reconcile_that_cannot_reach_its_backends_leaves_no_job(cut_off):
    job_id = cut_off.state.jobs.create("ds", RECONCILE, claim_active=True)
    cut_off.state.work.add(job_id, [(SCAN_UNIT, "")])
    cut_off.runner.run(job_id, "ds", SCAN_UNIT)
    assert cut_off.state.jobs.get(job_id) is None and cut_off.state.jobs.recent("ds") == []
    assert cut_off.state.jobs.active_job("ds") is None and cut_off.state.work.units_left(job_id) == 0
