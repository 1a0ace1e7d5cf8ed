"""Faults during ingestion, on the real test stack: each component killed with
SIGKILL mid-job (the stack's supervisor restarts it), and a dataset deleted
mid-job. The job ends by itself with every image and box in Milvus exactly once,
or, after the delete, nothing of the dataset anywhere."""

import time

import httpx
import pytest

from tests.chaos import DELETE, KILLABLE, Chaos, Expected, make_dataset
from tests.conftest import TEST_BATCH_SIZE, TEST_KEYS, TEST_LEASE_S

pytestmark = pytest.mark.stack
IMAGES = 64


@pytest.fixture(scope="module")
def chaos(stack):
    chaos = Chaos(stack)
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


def test_a_dataset_deleted_mid_ingestion_leaves_nothing_behind(stack, chaos, drop):
    folder, expected = drop
    dataset = "deleted-mid-job"
    report = chaos.run(DELETE, dataset, folder, expected, after_done=TEST_BATCH_SIZE)
    assert report.at_fault < IMAGES, "deleted mid-job"
    assert (report.images, report.objects) == (0, 0), report
    time.sleep(TEST_LEASE_S + 2)  # batches that were running have stopped or taken back their writes
    again = chaos.report(DELETE, "deleted", 0, 0, 0, dataset, Expected(set(), set()))
    assert (again.images, again.objects) == (0, 0), again
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    headers = {"Authorization": f"Bearer {TEST_KEYS['admin'][0]}"}
    for level in ("images", "objects"):
        found = httpx.post(f"{url}/v1/search", headers=headers, timeout=30,
                           json={"query": {"text": "a car on a road"}, "level": level, "top_k": 1000}).json()
        assert dataset not in {r["dataset"] for r in found["results"]}
    assert httpx.get(f"{url}/v1/datasets/{dataset}", headers=headers, timeout=30).status_code == 404
