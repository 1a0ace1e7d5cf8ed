"""Job records in real Redis (their progress is written by the work ledger: tests/test_work.py)."""

from services.common.genproto.vizsearch.v1 import indexer_pb2
from services.indexer.jobs import RECONCILE, SCAN, JobStore


def test_one_active_scan_per_dataset_and_open_jobs_are_listed(fresh_redis):
    jobs = JobStore(fresh_redis)
    first = jobs.create("ds", SCAN, claim_active=True)
    assert jobs.create("ds", SCAN, claim_active=True) is None
    other = jobs.create("other", SCAN, claim_active=True)
    assert other is not None and jobs.open_jobs() == sorted([first, other])
    jobs.fail(first, "broken")
    assert jobs.active_job("ds") is None and jobs.open_jobs() == [other]
    jobs.plan(other, total=0)
    assert jobs.get(other).state == indexer_pb2.JOB_STATE_SUCCEEDED and jobs.open_jobs() == []


def test_a_forgotten_job_does_not_start_again(fresh_redis):
    jobs = JobStore(fresh_redis)
    job_id = jobs.create("ds", SCAN)
    jobs.forget_dataset("ds")
    assert not jobs.start(job_id, "v1")
    assert jobs.get(job_id) is None and jobs.open_jobs() == []


def test_an_empty_plan_finishes_at_once_and_history_is_bounded(fresh_redis):
    jobs = JobStore(fresh_redis, history=3)
    ids = [jobs.create("ds", SCAN) for _ in range(5)]
    jobs.plan(ids[-1], total=0)
    assert jobs.get(ids[-1]).state == indexer_pb2.JOB_STATE_SUCCEEDED
    assert [j.id for j in jobs.recent("ds")] == list(reversed(ids[-3:]))
    assert jobs.get(ids[0]) is None


def test_an_idle_reconcile_is_forgotten_and_only_a_reconcile(fresh_redis):
    jobs = JobStore(fresh_redis)
    routine = jobs.create("ds", RECONCILE, claim_active=True)
    assert jobs.discard_if_reconcile(routine)
    assert jobs.get(routine) is None and jobs.active_job("ds") is None and jobs.recent("ds") == []
    asked_for = jobs.create("ds", SCAN)
    assert jobs.claim_active("ds", asked_for) and not jobs.claim_active("ds", "another")
    assert not jobs.discard_if_reconcile(asked_for)
    assert jobs.get(asked_for).kind == SCAN
