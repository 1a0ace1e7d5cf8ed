"""Ingestion end to end on the real stack: files dropped into object storage become
entries in Milvus through the real indexer, Celery workers in subprocesses, the
embedder and Triton. Tests run in order and share datasets, as a user's would."""

import json
import os
import signal
import subprocess
import time

import grpc
import httpx
import numpy as np
import pytest
from PIL import Image

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import indexer_pb2, indexer_pb2_grpc
from services.common.storage import ObjectStore
from services.common.vectors import LEVELS, VectorSettings, VectorStore
from services.common.wire import FINISHED_JOB_STATES
from services.localstack.components import worker_component
from tests import imagegen
from tests.conftest import TEST_BATCH_SIZE, TEST_WEBHOOK_TOKEN

pytestmark = pytest.mark.stack
OBJECT_FIELDS = ["key", "label", "source", "score", "box_x1", "box_y1", "box_x2", "box_y2", "indexed_at", "sha256"]


@pytest.fixture(scope="module")
def indexer(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.indexer_port}") as channel:
        yield indexer_pb2_grpc.IndexerStub(channel)


@pytest.fixture(scope="module")
def store(stack):
    return ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))


@pytest.fixture(scope="module")
def vectors(stack):
    store = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{stack.settings.milvus_port}"))
    yield store
    store.close()


@pytest.fixture(scope="module")
def model_version(embedder):
    from services.common.genproto.vizsearch.v1 import embedder_pb2

    return embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=30).version


def wait_for_job(indexer, job_id: str, timeout_s: float = 240) -> indexer_pb2.Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = indexer.GetJob(indexer_pb2.GetJobRequest(id=job_id), timeout=10)
        if job.state in FINISHED_JOB_STATES:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s}s: {job}")


def scan(indexer, dataset: str) -> indexer_pb2.Job:
    return wait_for_job(indexer, indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=dataset), timeout=10).id)


def entries(vectors, version, level, dataset) -> list[dict]:
    return vectors.entries(version, level, dataset, OBJECT_FIELDS + ["width", "height"])


# -- a dataset with every kind of awkward file ---------------------------------
DATASET = "street"
W, H = 320, 240


def awkward_dataset() -> tuple[dict[str, bytes], dict[str, str]]:
    """Files that index (every encoding a camera or a tool may produce) and files
    that must fail, with the words their reason must contain."""
    photo = imagegen.scene(W, H, seed=1)
    gif = imagegen.encode(photo.convert("P"), "GIF", save_all=True,
                          append_images=[imagegen.scene(W, H, seed=2).convert("P")])
    good = {f"cam/s{i}.jpg": imagegen.encode(imagegen.scene(W, H, seed=10 + i)) for i in range(6)}
    good.update({
        "exif.jpg": imagegen.exif_rotated_jpeg(imagegen.scene(200, 120, seed=3)),
        "cmyk.jpg": imagegen.encode(photo.convert("CMYK"), "JPEG"),
        "gray.png": imagegen.encode(photo.convert("L"), "PNG"),
        "deep.png": imagegen.sixteen_bit_png(W, H),
        "palette.png": imagegen.palette_png_with_transparency(W, H),
        "photo.webp": imagegen.encode(photo, "WEBP"),
        "photo.bmp": imagegen.encode(photo, "BMP"),
        "photo.tiff": imagegen.encode(photo, "TIFF"),
        "anim.gif": gif,
    })
    jpeg = imagegen.encode(photo)
    bad = {
        "corrupt.jpg": (np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not an image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "empty.png": (b"", "empty file"),
        "notes.jpg": (b"these are notes, not a photo", "not an image"),
        "bomb.png": (imagegen.encode(Image.new("L", (10_000, 10_000)), "PNG"), "over the limit"),
        "huge.jpg": (jpeg + bytes(21 * 1024 * 1024), "over the 20971520-byte limit"),
    }
    files = {**good, **{k: v for k, (v, _) in bad.items()}, "README.md": b"# not an image, not indexed\n"}
    return files, {k: reason for k, (_, reason) in bad.items()}


GROUND_TRUTH = {
    "images": [{"id": 1, "file_name": "s0.jpg"}, {"id": 2, "file_name": "cam/s1.jpg"},
               {"id": 3, "file_name": "exif.jpg"}, {"id": 4, "file_name": "cam/s2.jpg"},
               {"id": 5, "file_name": "missing.jpg"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 100, 80]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [150, 30, 120, 150]},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 50, 200]},
        {"id": 4, "image_id": 3, "category_id": 1, "bbox": [120, 10, 70, 100]},  # in the upright 200x120 image
        {"id": 5, "image_id": 4, "category_id": 1, "bbox": [400, 300, 50, 50]},  # outside the image
        {"id": 6, "image_id": 5, "category_id": 1, "bbox": [1, 1, 5, 5]},
    ],
    "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "bus"}, {"id": 3, "name": "pedestrian"}],
}
PREDICTIONS_BDD = [{"name": "s3.jpg", "labels": [
    {"category": "car", "box2d": {"x1": 5, "y1": 5, "x2": 105, "y2": 95}, "score": 0.9},
    {"category": "truck", "box2d": {"x1": 200, "y1": 100, "x2": 310, "y2": 230}},
    {"category": "drivable area", "poly2d": [[0, 0, "L"]]},
]}]


def test_a_dropped_dataset_is_found_and_indexed_and_bad_files_are_reported(indexer, store, vectors, model_version):
    files, bad = awkward_dataset()
    for key, data in files.items():
        store.put(DATASET, key, data)
    store.put(DATASET, "_annotations/ground_truth.json", json.dumps(GROUND_TRUTH).encode())
    store.put(DATASET, "_annotations/predictions.json", json.dumps(PREDICTIONS_BDD).encode())
    store.put(DATASET, "_annotations/broken.json", b"{oops")

    # Nobody calls the API: the reconciler finds the new prefix and, once the drop has
    # settled, indexes it (passes that find it still changing leave no job).
    deadline = time.monotonic() + 120
    job = None
    while job is None or job.state not in FINISHED_JOB_STATES:
        assert time.monotonic() < deadline, "the reconciler did not index the dropped dataset"
        time.sleep(0.5)
        jobs = indexer.ListJobs(indexer_pb2.ListJobsRequest(dataset=DATASET), timeout=10).jobs
        job = jobs[-1] if jobs else None

    good = sorted(k for k in files if k not in bad and k != "README.md")
    assert job.state == indexer_pb2.JOB_STATE_COMPLETED_WITH_FAILURES
    assert (job.total, job.done, job.failed, job.skipped) == (21, 15, 6, 0)
    assert job.objects == 6 and job.annotation_errors == 3
    failures = {(f.key, f.reason) for f in job.failures}
    for key, words in bad.items():
        assert any(k == key and words in reason for k, reason in failures), (key, words, failures)
    assert any(k == "cam/s2.jpg" and "lies outside the 320x240 image" in r for k, r in failures)
    assert any(k == "missing.jpg" and "no image 'missing.jpg'" in r for k, r in failures)
    assert any(k == "_annotations/broken.json" and "not valid JSON" in r for k, r in failures)

    dataset = indexer.GetDataset(indexer_pb2.GetDatasetRequest(name=DATASET), timeout=30)
    assert (dataset.images, dataset.objects, dataset.failed) == (15, 6, 6)
    assert dataset.last_job.id == job.id

    images = {e["key"]: e for e in entries(vectors, model_version, "images", DATASET)}
    assert sorted(images) == good
    assert (images["exif.jpg"]["width"], images["exif.jpg"]["height"]) == (200, 120), "EXIF orientation applied"
    objects = {(e["key"], e["label"], e["source"], round(e["score"], 3),
                (e["box_x1"], e["box_y1"], e["box_x2"], e["box_y2"]))
               for e in entries(vectors, model_version, "objects", DATASET)}
    assert objects == {
        ("cam/s0.jpg", "car", "ground_truth", 0.0, (10, 20, 110, 100)),
        ("cam/s0.jpg", "bus", "ground_truth", 0.0, (150, 30, 270, 180)),
        ("cam/s1.jpg", "pedestrian", "ground_truth", 0.0, (0, 0, 50, 200)),
        ("exif.jpg", "car", "ground_truth", 0.0, (120, 10, 190, 110)),
        ("cam/s3.jpg", "car", "prediction", 0.9, (5, 5, 105, 95)),
        ("cam/s3.jpg", "truck", "ground_truth", 0.0, (200, 100, 310, 230)),
    }


def test_a_rescan_of_an_unchanged_dataset_embeds_nothing(indexer, vectors, model_version):
    before = {e["key"]: e["indexed_at"] for e in entries(vectors, model_version, "images", DATASET)}
    job = scan(indexer, DATASET)
    assert (job.total, job.done, job.failed, job.skipped, job.objects) == (21, 0, 0, 21, 0)
    after = {e["key"]: e["indexed_at"] for e in entries(vectors, model_version, "images", DATASET)}
    assert after == before
    assert indexer.GetDataset(indexer_pb2.GetDatasetRequest(name=DATASET), timeout=30).failed == 6


def test_replaced_and_deleted_files_and_changed_annotations_are_followed(indexer, store, vectors, model_version):
    old = {e["key"]: e for e in entries(vectors, model_version, "images", DATASET)}
    store.put(DATASET, "cam/s4.jpg", imagegen.encode(imagegen.scene(W, H, seed=99)))
    store.client.remove_object(store.bucket, f"{DATASET}/cam/s5.jpg")
    store.client.remove_object(store.bucket, f"{DATASET}/corrupt.jpg")
    store.put(DATASET, "notes.jpg", imagegen.encode(imagegen.scene(W, H, seed=7)))  # fixed
    truth = json.loads(json.dumps(GROUND_TRUTH))
    truth["annotations"] = [a for a in truth["annotations"] if a["image_id"] != 2]  # s1 loses its box
    store.put(DATASET, "_annotations/ground_truth.json", json.dumps(truth).encode())

    # The reconciler may get there first; either way the index must end up right.
    deadline = time.monotonic() + 120
    while True:
        job = scan(indexer, DATASET)
        images = {e["key"]: e for e in entries(vectors, model_version, "images", DATASET)}
        if "notes.jpg" in images and "cam/s5.jpg" not in images or time.monotonic() > deadline:
            break
    assert "cam/s5.jpg" not in images and "corrupt.jpg" not in images
    assert images["cam/s4.jpg"]["sha256"] != old["cam/s4.jpg"]["sha256"]
    assert images["notes.jpg"]["width"] == W
    assert images["cam/s0.jpg"]["indexed_at"] == old["cam/s0.jpg"]["indexed_at"], "unchanged images are left alone"
    object_keys = [e["key"] for e in entries(vectors, model_version, "objects", DATASET)]
    assert "cam/s1.jpg" not in object_keys and len(object_keys) == 5
    dataset = indexer.GetDataset(indexer_pb2.GetDatasetRequest(name=DATASET), timeout=30)
    assert (dataset.images, dataset.objects, dataset.failed) == (15, 5, 4)
    assert job.state in FINISHED_JOB_STATES


def test_a_worker_killed_mid_job_loses_nothing(stack, indexer, store, vectors, model_version):
    dataset = "killed"
    keys = [f"img{i:03d}.jpg" for i in range(8 * TEST_BATCH_SIZE)]
    for i, key in enumerate(keys):
        store.put(dataset, key, imagegen.encode(imagegen.scene(W, H, seed=1000 + i)))
    extra = worker_component(stack.settings, "extra-worker", metrics_port=stack.settings.worker_metrics_port + 1)
    with open(stack.run / "logs" / "extra-worker.log", "ab") as log:
        victim = subprocess.Popen(extra.command, env={**os.environ, **extra.env}, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        job_id = indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=dataset), timeout=10).id
        deadline = time.monotonic() + 120
        while indexer.GetJob(indexer_pb2.GetJobRequest(id=job_id), timeout=10).done < TEST_BATCH_SIZE:
            assert time.monotonic() < deadline, "no batch finished"
            time.sleep(0.2)
    finally:
        os.killpg(victim.pid, signal.SIGKILL)  # no chance to finish, ack or requeue anything
        victim.wait()
    job = wait_for_job(indexer, job_id)
    # The reconciler may find the drop while it is being written and index part of it
    # first: those keys are unchanged for the scan.
    assert (job.state, job.total, job.done + job.skipped, job.failed) == (
        indexer_pb2.JOB_STATE_SUCCEEDED, len(keys), len(keys), 0)
    indexed = [e["key"] for e in entries(vectors, model_version, "images", dataset)]
    assert sorted(indexed) == keys, "every image exactly once"


def test_minio_events_index_and_remove_through_the_webhook(stack, indexer, store, vectors, model_version):
    from tests.test_events import load

    url = f"http://127.0.0.1:{stack.settings.webhook_port}/v1/minio/events"
    key = "street scenes/cam 1+2.jpg"
    store.put("events-ds", key, imagegen.encode(imagegen.scene(W, H, seed=5)))
    assert httpx.post(url, json=load("put.json")).status_code == 401
    assert httpx.post(url, json=load("put.json"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    bad = httpx.post(url, json={"no": "records"}, headers={"Authorization": f"Bearer {TEST_WEBHOOK_TOKEN}"})
    assert bad.status_code == 422 and "Records" in bad.json()["detail"]

    reply = httpx.post(url, json=load("put.json"), headers={"Authorization": f"Bearer {TEST_WEBHOOK_TOKEN}"})
    assert reply.status_code == 200, reply.text
    [job_id] = reply.json()["jobs"]
    job = wait_for_job(indexer, job_id)
    assert (job.kind, job.total, job.done + job.skipped) == ("event", 1, 1)
    assert [e["key"] for e in entries(vectors, model_version, "images", "events-ds")] == [key]

    store.client.remove_object(store.bucket, f"events-ds/{key}")
    reply = httpx.post(url, json=load("delete.json"), headers={"Authorization": TEST_WEBHOOK_TOKEN})
    job = wait_for_job(indexer, reply.json()["jobs"][0])
    assert job.done == 1
    assert entries(vectors, model_version, "images", "events-ds") == []


def test_datasets_are_created_configured_listed_and_deleted(indexer, store, vectors, model_version):
    with pytest.raises(grpc.RpcError) as error:
        indexer.CreateDataset(indexer_pb2.CreateDatasetRequest(name="../etc"), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'../etc'" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        indexer.CreateDataset(indexer_pb2.CreateDatasetRequest(
            name="wide", config=indexer_pb2.DatasetConfig(box_margin=3)), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "box_margin" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        indexer.GetDataset(indexer_pb2.GetDatasetRequest(name="nope"), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        indexer.GetJob(indexer_pb2.GetJobRequest(id="nope"), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND

    created = indexer.CreateDataset(indexer_pb2.CreateDatasetRequest(
        name="wide", config=indexer_pb2.DatasetConfig(box_margin=0.5)), timeout=10)
    assert (created.config.box_margin, created.images) == (0.5, 0)
    store.put("wide", "a.jpg", imagegen.encode(imagegen.scene(W, H, seed=8)))
    store.put("wide", "_annotations/gt.json", json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 100, 40, 40]}],
        "categories": [{"id": 1, "name": "dog"}]}).encode())
    scan(indexer, "wide")
    assert "wide" in [d.name for d in indexer.ListDatasets(indexer_pb2.ListDatasetsRequest(), timeout=30).datasets]

    deleted = indexer.DeleteDataset(indexer_pb2.DeleteDatasetRequest(name="wide"), timeout=30)
    assert deleted.deleted_entries == 2
    assert entries(vectors, model_version, "images", "wide") == []
    assert store.get("wide", "a.jpg", 10**6), "the stored images are never touched"
    time.sleep(5)  # two reconciler passes: a deleted dataset is not rediscovered from its prefix
    assert "wide" not in [d.name for d in indexer.ListDatasets(indexer_pb2.ListDatasetsRequest(), timeout=30).datasets]


def test_a_new_model_is_served_once_every_dataset_is_scanned_under_it(stack, fresh_redis, model_version):
    """Collections of another prefix, and Redis of its own, so the stack's indexer is undisturbed."""
    from services.indexer.celery_app import create_app
    from services.indexer.config import IndexerSettings
    from services.indexer.dispatcher import Dispatcher
    from services.indexer.indexer import Indexer
    from services.indexer.jobs import SCAN
    from services.indexer.state import IndexerState

    prefix = "modelswitch"
    old = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{stack.settings.milvus_port}",
                                     collection_prefix=prefix))
    old.ensure_collections("oldmodel", 512)
    assert old.serving_version() == "oldmodel"

    redis_port = fresh_redis.connection_pool.connection_kwargs["port"]
    settings = IndexerSettings(
        embedder_url=f"127.0.0.1:{stack.settings.embedder_port}", redis_url=f"redis://127.0.0.1:{redis_port}/0",
        milvus_uri=f"http://127.0.0.1:{stack.settings.milvus_port}", collection_prefix=prefix)
    state = IndexerState(settings)
    indexer = Indexer(state, Dispatcher(state, create_app(settings)))
    try:
        assert state.model().version == model_version  # creates the new model's collections...
        assert state.vectors.client.has_collection(state.vectors.collection("objects", model_version))
        assert old.serving_version() == "oldmodel"  # ...without serving them yet
        state.catalog.register("a")
        state.catalog.register("b")
        job_a = state.jobs.create("a", SCAN)
        state.jobs.start(job_a, model_version)
        state.jobs.plan(job_a, total=0)
        assert not indexer.maybe_switch_aliases(), "dataset b has no scan under the new model yet"
        job_b = state.jobs.create("b", SCAN)
        state.jobs.start(job_b, model_version)
        state.jobs.plan(job_b, total=0)
        assert indexer.maybe_switch_aliases()
        assert old.serving_version("images") == old.serving_version("objects") == model_version
    finally:
        state.close()
        for level in LEVELS:
            old.client.drop_alias(old.alias(level))
        for name in old.client.list_collections():
            if name.startswith(f"{prefix}_"):
                old.client.drop_collection(name)
        old.close()
