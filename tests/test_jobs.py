"""Job progress in real Redis: exact under redelivery, finished exactly once."""

import time

from services.indexer.jobs import (COMPLETED_WITH_FAILURES, DONE, FAILED, FAILED_ITEM, QUEUED, RECONCILE, RUNNING, SCAN,
                                   SKIPPED, SUCCEEDED, JobStore)


def test_redelivered_outcomes_count_once_and_the_job_finishes_once(fresh_redis):
    jobs = JobStore(fresh_redis)
    job_id = jobs.create("ds", SCAN)
    assert jobs.get(job_id).state == QUEUED
    jobs.start(job_id, "v1")
    jobs.plan(job_id, total=5, unchanged=2)
    for _ in range(2):  # the same batch, delivered twice
        jobs.record(job_id, "a.jpg", DONE, objects=3)
        jobs.record(job_id, "b.jpg", SKIPPED)
    assert jobs.maybe_finish(job_id) == RUNNING
    view = jobs.get(job_id)
    assert (view.done, view.skipped, view.failed, view.objects, view.total) == (1, 3, 0, 3, 5)
    jobs.record(job_id, "c.jpg", DONE)
    assert jobs.maybe_finish(job_id) == SUCCEEDED
    finished_at = jobs.get(job_id).finished_at
    time.sleep(0.01)
    jobs.record(job_id, "c.jpg", DONE)
    assert jobs.maybe_finish(job_id) == SUCCEEDED
    assert jobs.get(job_id).finished_at == finished_at


def test_a_key_has_one_outcome_the_latest(fresh_redis):
    jobs = JobStore(fresh_redis)
    job_id = jobs.create("ds", SCAN)
    jobs.plan(job_id, total=1)
    jobs.record(job_id, "a.jpg", FAILED_ITEM, "gave up after 8 retries")
    jobs.record(job_id, "a.jpg", DONE)
    view = jobs.get(job_id)
    assert (view.done, view.failed, view.failures) == (1, 0, [])


def test_failures_and_annotation_problems_are_listed_with_reasons(fresh_redis):
    jobs = JobStore(fresh_redis)
    job_id = jobs.create("ds", SCAN)
    jobs.record_problem(job_id, "_annotations/x.json", "not valid JSON")
    jobs.plan(job_id, total=1)
    jobs.record(job_id, "bad.jpg", FAILED_ITEM, "not an image")
    assert jobs.maybe_finish(job_id) == COMPLETED_WITH_FAILURES
    view = jobs.get(job_id)
    assert view.failures == [("_annotations/x.json", "not valid JSON"), ("bad.jpg", "not an image")]
    assert (view.failed, view.annotation_errors) == (1, 1)


def test_one_active_scan_per_dataset_and_stale_ones_are_released(fresh_redis):
    jobs = JobStore(fresh_redis)
    first = jobs.create("ds", SCAN, claim_active=True)
    assert jobs.create("ds", SCAN, claim_active=True) is None
    assert jobs.create("other", SCAN, claim_active=True) is not None
    jobs.release_if_stale("ds", stale_after_s=60)
    assert jobs.active_job("ds") == first
    jobs.release_if_stale("ds", stale_after_s=0)
    assert jobs.active_job("ds") is None
    assert jobs.get(first).state == FAILED and "no progress" in jobs.get(first).error


def test_an_empty_plan_finishes_at_once_and_history_is_bounded(fresh_redis):
    jobs = JobStore(fresh_redis, history=3)
    ids = [jobs.create("ds", SCAN) for _ in range(5)]
    jobs.plan(ids[-1], total=0)
    assert jobs.get(ids[-1]).state == SUCCEEDED
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
