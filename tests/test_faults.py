"""Faults on the real test stack. During ingestion: each component killed with
SIGKILL mid-job (the stack's supervisor restarts it), and a dataset deleted
mid-job; the job ends by itself with every image and box in Milvus exactly once,
or, after the delete, nothing of the dataset anywhere. Outages: readiness says
which backend is down, and a stalled backend is 503, never 500 or 502."""

import os
import signal
import time

import httpx
import pytest

from tests.chaos import DELETE, KILLABLE, Chaos, Expected, make_dataset
from tests.conftest import TEST_BATCH_SIZE, TEST_KEYS, TEST_LEASE_S

pytestmark = pytest.mark.stack
IMAGES = 64
ADMIN = {"Authorization": f"Bearer {TEST_KEYS['admin'][0]}"}


@pytest.fixture(scope="module")
def chaos(stack):
    chaos = Chaos(stack, TEST_KEYS["admin"][0])
    yield chaos
    chaos.close()


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    return folder, make_dataset(folder, IMAGES, seed=7)


@pytest.mark.parametrize("component", KILLABLE)
def test_a_component_killed_mid_ingestion_loses_and_duplicates_nothing(chaos, drop, component):
    folder, expected = drop
    report = chaos.run(component, f"killed-{component}", folder, expected, after_done=TEST_BATCH_SIZE)
    assert report.at_fault < IMAGES, "the fault struck mid-job"
    assert report.job_state == "succeeded", report
    assert report.exact, report
    # Every component healthy means the gateway is ready: a search is served at once, not
    # after Milvus's stale sessions expire.
    reply = httpx.post(f"{gateway(chaos.stack)}/v1/search", json={"query": {"text": "a bus"}}, headers=ADMIN, timeout=5)
    assert reply.status_code == 200 and reply.json()["results"], reply.text


def gateway(stack) -> str:
    return f"http://127.0.0.1:{stack.settings.gateway_http_port}"


def wait_for(condition, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.3)
    return result


def test_readiness_names_the_backend_that_is_down_and_recovers(stack, chaos):
    def readiness() -> httpx.Response:
        return httpx.get(f"{gateway(stack)}/readyz", timeout=30)

    assert readiness().status_code == 200
    milvus = stack.pid("milvus")
    os.killpg(milvus, signal.SIGSTOP)  # a stall: the process is there, its answers are not
    try:
        # Each service notices on its next probe: wait until both that read Milvus say so.
        down = wait_for(lambda: (r := readiness()).status_code == 503 and "indexer" in r.text and "query" in r.text
                        and r)
        assert down.headers["content-type"] == "application/problem+json"
        assert "embedder" not in down.json()["detail"], "only what depends on Milvus"
    finally:
        os.killpg(milvus, signal.SIGCONT)
    chaos.wait_all_healthy(180)  # it may have exited on waking (its session lapsed): the supervisor restarts it
    wait_for(lambda: readiness().status_code == 200)


def test_a_stalled_redis_is_unavailable_not_a_bad_gateway(stack, chaos):
    redis_pid = stack.pid("redis")
    os.killpg(redis_pid, signal.SIGSTOP)
    try:
        reply = httpx.get(f"{gateway(stack)}/v1/datasets", headers=ADMIN, timeout=60)
    finally:
        os.killpg(redis_pid, signal.SIGCONT)
    assert reply.status_code == 503 and "Redis" in reply.json()["detail"], reply.text
    chaos.wait_all_healthy(60)
    assert httpx.get(f"{gateway(stack)}/v1/datasets", headers=ADMIN, timeout=60).status_code == 200


def test_a_dataset_deleted_mid_ingestion_leaves_nothing_behind(stack, chaos, drop):
    folder, expected = drop
    dataset = "deleted-mid-job"
    report = chaos.run(DELETE, dataset, folder, expected, after_done=TEST_BATCH_SIZE)
    assert report.at_fault < IMAGES, "deleted mid-job"
    assert (report.images, report.objects) == (0, 0), report
    time.sleep(TEST_LEASE_S + 2)  # batches that were running have stopped or taken back their writes
    again = chaos.report(DELETE, "deleted", 0, 0, 0, dataset, Expected(set(), set()))
    assert (again.images, again.objects) == (0, 0), again
    for level in ("images", "objects"):
        found = httpx.post(f"{gateway(stack)}/v1/search", headers=ADMIN, timeout=30,
                           json={"query": {"text": "a car on a road"}, "level": level, "top_k": 1000}).json()
        assert dataset not in {r["dataset"] for r in found["results"]}
    assert httpx.get(f"{gateway(stack)}/v1/datasets/{dataset}", headers=ADMIN, timeout=30).status_code == 404
