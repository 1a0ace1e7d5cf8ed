"""The ingestion tasks' failure handling, with the embedder unreachable (a closed port)."""

import pytest

from services.indexer import tasks
from services.indexer.config import IndexerSettings
from services.indexer.ingest import Ingestor, Transient
from services.indexer.jobs import EVENT, FAILED


@pytest.fixture
def cut_off(fresh_redis, monkeypatch):
    """An ingestor whose embedder is down; the tasks use it."""
    port = fresh_redis.connection_pool.connection_kwargs["port"]
    ingestor = Ingestor(IndexerSettings(embedder_url="127.0.0.1:1", redis_url=f"redis://127.0.0.1:{port}/0",
                                        embed_timeout_s=2))
    monkeypatch.setattr(tasks, "_ingestor", ingestor)
    yield ingestor
    ingestor.close()


def test_an_unreachable_embedder_is_transient(cut_off):
    with pytest.raises(Transient, match="embedder: UNAVAILABLE"):
        cut_off.index_keys("job", "ds", ["a.jpg"])


def test_a_batch_retries_with_backoff_then_gives_up_and_its_job_ends(cut_off, caplog):
    job_id = cut_off.jobs.create("ds", EVENT)
    cut_off.jobs.plan(job_id, total=2)
    # Run eagerly, the retries happen at once, one inside the other (countdowns are logged, not waited).
    result = tasks.index_batch.apply(args=[job_id, "ds", ["a.jpg", "b.jpg"]])
    assert result.state == "SUCCESS"
    waits = [float(r.getMessage().split()[2].rstrip("s:")) for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(waits) == tasks.settings.task_max_retries
    job = cut_off.jobs.get(job_id)
    assert (job.failed, job.state) == (2, "completed_with_failures")
    assert all("gave up after" in reason and "UNAVAILABLE" in reason for _, reason in job.failures)


def test_a_scan_that_cannot_start_fails_its_job_with_the_reason(cut_off):
    job_id = cut_off.jobs.create("ds", "scan")
    assert tasks.scan_dataset.apply(args=[job_id, "ds"], retries=tasks.settings.task_max_retries).state == "SUCCESS"
    job = cut_off.jobs.get(job_id)
    assert job.state == FAILED and "embedder: UNAVAILABLE" in job.error


def test_backoff_grows_and_is_capped():
    waits = [tasks._backoff_s(n) for n in range(12)]
    assert waits[0] <= 1 and waits[3] >= 4 and max(waits) <= tasks.settings.task_retry_backoff_max_s
