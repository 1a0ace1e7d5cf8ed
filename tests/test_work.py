"""The work ledger in real Redis: fair dispatch within a window, leases, atomic
commits that a cancellation or a takeover refuses, and lost units found again."""

import json

import pytest

from services.common.genproto.vizsearch.v1 import indexer_pb2
from services.indexer.jobs import COMPLETED_WITH_FAILURES, DONE, FAILED_ITEM, SCAN, SKIPPED, SUCCEEDED, JobStore
from services.indexer.work import SCAN_UNIT, Claim, CommitKeys, Results, WorkLedger, batch_keys, batch_units


@pytest.fixture
def ledger(fresh_redis):
    return WorkLedger(fresh_redis, lease_s=30)


@pytest.fixture
def jobs(fresh_redis):
    return JobStore(fresh_redis)


def commit_keys(jobs: JobStore, job_id: str) -> CommitKeys:
    return CommitKeys(*jobs.record_keys(job_id), manifest="m:ds", failing="f:ds", findings=jobs.findings_key(job_id))


def test_units_are_handed_out_round_robin_within_the_window(ledger):
    ledger.add("big", batch_units([[f"{i}.jpg"] for i in range(10)]))
    ledger.add("small", batch_units([["a.jpg"], ["b.jpg"]]))
    first = ledger.take(window=4)
    assert [job for job, _ in first] == ["big", "small", "big", "small"]
    assert ledger.take(window=4) == [], "the window is full"
    assert ledger.backlog() == 8
    ledger.add("new", batch_units([["n.jpg"]]))
    for job, unit in first[:2]:
        status, payload = ledger.claim(job, unit, "t")
        assert status == Claim.CLAIMED and batch_keys(payload)
        ledger.commit(job, unit, "t", CommitKeys("j", "d", "s", "f", "p", "m", "x", "findings"), Results())
    assert [job for job, _ in ledger.take(window=4)] == ["big", "new"], "a new job waits its turn, not more"


def test_a_stream_of_new_jobs_cannot_starve_a_waiting_one(ledger):
    ledger.add("waiting", batch_units([[f"{i}.jpg"] for i in range(3)]))
    served = []
    for n in range(6):  # a job arrives before every take, as a reconciler's idle scans do
        ledger.add(f"scan-{n}", batch_units([[f"s{n}.jpg"]]))
        served += [job for job, _ in ledger.take(window=len(ledger.in_flight()) + 1)]
    assert served.count("waiting") == 3, served


def test_a_unit_is_run_by_one_worker_at_a_time(ledger):
    ledger.add("job", batch_units([["a.jpg"]]))
    [(job, unit)] = ledger.take(window=2)
    assert ledger.claim(job, unit, "first")[0] == Claim.CLAIMED
    assert ledger.claim(job, unit, "second") == (Claim.BUSY, "")
    assert ledger.renew(job, unit, "first") and not ledger.renew(job, unit, "second")
    assert ledger.held([f"{job}/{unit}"]) == [f"{job}/{unit}"]


def test_a_commit_records_everything_once_and_a_redelivery_changes_nothing(ledger, jobs, fresh_redis):
    job_id = jobs.create("ds", SCAN)
    ledger.add(job_id, [(SCAN_UNIT, "")])
    [(_, unit)] = ledger.take(window=2)
    assert ledger.claim(job_id, unit, "t")[0] == Claim.CLAIMED
    assert jobs.get(job_id).state == indexer_pb2.JOB_STATE_QUEUED
    plan = Results(plan=(3, 1), units=batch_units([["a.jpg", "b.jpg"]]), problems=[("_annotations/x.json", "bad")])
    assert ledger.commit(job_id, SCAN_UNIT, "t", commit_keys(jobs, job_id), plan) == 1
    assert jobs.get(job_id).state == indexer_pb2.JOB_STATE_RUNNING and ledger.units_left(job_id) == 1
    [(_, batch)] = ledger.take(window=2)
    results = Results(manifest=[("a.jpg", '["sig", "sha", ""]')], failing=[("b.jpg", "not an image")],
                      outcomes=[("a.jpg", DONE, "", 2), ("b.jpg", FAILED_ITEM, "not an image", 0)])
    for token in ("t1", "t2"):  # the same batch, delivered twice: the second finds it committed
        if ledger.claim(job_id, batch, token)[0] == Claim.CLAIMED:
            assert ledger.commit(job_id, batch, token, commit_keys(jobs, job_id), results) == 1
    assert jobs.maybe_finish(job_id) == COMPLETED_WITH_FAILURES
    view = jobs.get(job_id)
    assert (view.total, view.done, view.skipped, view.failed, view.objects) == (3, 1, 1, 1, 2)
    assert sorted((f.key, f.reason) for f in view.failures) == [("_annotations/x.json", "bad"), ("b.jpg", "not an image")]
    assert json.loads(fresh_redis.hget("m:ds", "a.jpg")) == ["sig", "sha", ""]
    assert fresh_redis.hget("f:ds", "b.jpg") == b"not an image"
    assert ledger.units_left(job_id) == 0 and ledger.in_flight() == {}


def test_a_batch_run_again_after_committing_stays_done(ledger, jobs):
    job_id = jobs.create("ds", SCAN)
    jobs.plan(job_id, total=1)
    ledger.add(job_id, batch_units([["a.jpg"]]))
    keys = commit_keys(jobs, job_id)
    assert ledger.claim(job_id, "b0", "t")[0] == Claim.CLAIMED
    ledger.commit(job_id, "b0", "t", keys, Results(outcomes=[("a.jpg", DONE, "", 1)]))
    # A worker that died between writing and committing: its unit is planned again, and
    # this time finds its own work unchanged.
    ledger.add(job_id, batch_units([["a.jpg"]]))
    assert ledger.claim(job_id, "b0", "u")[0] == Claim.CLAIMED
    ledger.commit(job_id, "b0", "u", keys, Results(outcomes=[("a.jpg", SKIPPED, "", 0)]))
    view = jobs.get(job_id)
    assert (view.done, view.skipped, view.objects) == (1, 0, 1)
    assert jobs.maybe_finish(job_id) == SUCCEEDED


def test_a_cancelled_unit_commits_nothing_and_its_queued_units_go(ledger, jobs, fresh_redis):
    job_id = jobs.create("ds", SCAN)
    ledger.add(job_id, batch_units([["a.jpg"], ["b.jpg"], ["c.jpg"]]))
    [(_, running), (_, sent)] = ledger.take(window=2)
    assert ledger.claim(job_id, running, "t")[0] == Claim.CLAIMED
    assert sorted(ledger.cancel([job_id])) == sorted([f"{job_id}/{running}", f"{job_id}/{sent}"])
    assert ledger.held([f"{job_id}/{running}", f"{job_id}/{sent}"]) == [f"{job_id}/{running}"]
    assert not ledger.renew(job_id, running, "t"), "the worker learns it was cancelled"
    results = Results(manifest=[("a.jpg", "[]")], outcomes=[("a.jpg", DONE, "", 0)])
    assert ledger.commit(job_id, running, "t", commit_keys(jobs, job_id), results) == 0
    assert not fresh_redis.exists("m:ds") and jobs.get(job_id).done == 0
    assert ledger.held([f"{job_id}/{running}"]) == [], "the lease is given back"
    assert ledger.claim(job_id, sent, "u") == (Claim.GONE, "")
    assert ledger.take(window=10) == [] and ledger.backlog() == 0


def test_a_unit_taken_over_cannot_be_committed_by_its_first_worker(ledger, jobs, fresh_redis):
    ledger = WorkLedger(fresh_redis, lease_s=0.05)
    job_id = jobs.create("ds", SCAN)
    ledger.add(job_id, batch_units([["a.jpg"]]))
    [(_, unit)] = ledger.take(window=1)
    assert ledger.claim(job_id, unit, "stalled")[0] == Claim.CLAIMED
    fresh_redis.delete(f"vz:work:lease:{job_id}/{unit}")  # its lease ran out
    assert ledger.unaccounted(queued=set()) == [f"{job_id}/{unit}"]
    assert ledger.requeue(f"{job_id}/{unit}")
    assert ledger.take(window=1) == [(job_id, unit)]
    assert ledger.claim(job_id, unit, "second")[0] == Claim.CLAIMED
    assert not ledger.renew(job_id, unit, "stalled")
    assert ledger.commit(job_id, unit, "stalled", commit_keys(jobs, job_id), Results()) == -1
    assert ledger.commit(job_id, unit, "second", commit_keys(jobs, job_id), Results()) == 1


def test_lost_units_are_those_neither_queued_nor_leased(ledger):
    ledger.add("job", batch_units([["a.jpg"], ["b.jpg"], ["c.jpg"]]))
    taken = ledger.take(window=3)
    ledger.claim(*taken[0], "t")
    queued = {f"{taken[1][0]}/{taken[1][1]}"}
    assert ledger.unaccounted(queued) == [f"{taken[2][0]}/{taken[2][1]}"]
    assert not ledger.requeue(f"{taken[0][0]}/{taken[0][1]}"), "a leased unit is never requeued"
    assert ledger.requeue(f"{taken[2][0]}/{taken[2][1]}")
    assert ledger.take(window=3) == [taken[2]], "a lost unit goes first"


def test_a_lease_that_lapsed_while_redis_was_away_is_taken_back(ledger, fresh_redis):
    ledger.add("job", batch_units([["a.jpg"]]))
    [(job, unit)] = ledger.take(window=1)
    ledger.claim(job, unit, "t")
    fresh_redis.delete(f"vz:work:lease:{job}/{unit}")
    assert ledger.renew(job, unit, "t") and ledger.held([f"{job}/{unit}"])


def test_the_window_follows_the_live_workers(ledger, fresh_redis):
    ledger.register_worker("w1", slots=4, ttl_s=30)
    ledger.register_worker("w2", slots=2, ttl_s=-1)  # its registration ran out: it died
    assert ledger.worker_slots() == 4
    assert fresh_redis.hkeys("vz:work:workers") == [b"w1"]
    ledger.unregister_worker("w1")
    assert ledger.worker_slots() == 0
