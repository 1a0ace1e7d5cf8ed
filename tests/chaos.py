"""Faults injected into a running local stack during ingestion, and what they cost:
shared by the fault tests (tests/test_faults.py, small datasets) and `make chaos`
(tests/bench/chaos.py, 300 images).

A fault is a SIGKILL of one component's process group while a dataset is being
indexed (the stack's supervisor starts it again), or the dataset's deletion. The
outcome is read from Milvus itself: every image and every box exactly once, or,
after a deletion, nothing of the dataset.
"""

import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.common.genproto.vizsearch.v1 import embedder_pb2, embedder_pb2_grpc, indexer_pb2, indexer_pb2_grpc
from services.common.vectors import VectorSettings, VectorStore
from services.common.wire import FINISHED_JOB_STATES
from services.localstack.launcher import Stack
from model import demo_data
from vizsearch.client import Client

KILLABLE = ("worker", "indexer", "embedder", "triton", "milvus", "redis")
DELETE = "delete"


@dataclass
class Expected:
    images: set[str]
    objects: set[tuple]  # (key, label, x1, y1, x2, y2)


@dataclass
class Report:
    fault: str
    job_state: str
    at_fault: int  # images indexed when the fault struck
    back_s: float  # from the fault until the component answered again
    done_s: float  # from the fault until the job ended (or, for a delete, until nothing was left)
    images: int
    objects: int
    expected_images: int
    expected_objects: int
    duplicates: int
    lost: int

    @property
    def exact(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and self.images == self.expected_images \
            and self.objects == self.expected_objects


def make_dataset(folder: Path, images: int, seed: int) -> Expected:
    if not (folder / "_annotations" / "instances.json").is_file():
        demo_data.generate(folder, images, seed)
    coco = json.loads((folder / "_annotations" / "instances.json").read_text())
    files = {i["id"]: i["file_name"] for i in coco["images"]}
    labels = {c["id"]: c["name"] for c in coco["categories"]}
    objects = {(files[a["image_id"]], labels[a["category_id"]], *_corners(a["bbox"])) for a in coco["annotations"]}
    return Expected(set(files.values()), objects)


def _corners(bbox) -> tuple[float, float, float, float]:
    x, y, w, h = bbox
    return float(x), float(y), float(x + w), float(y + h)


class Chaos:
    def __init__(self, stack: Stack, api_key: str | None = None):
        self.stack = stack
        s = stack.settings
        self.client = Client(f"http://127.0.0.1:{s.gateway_http_port}", api_key)
        self._indexer_channel = grpc.insecure_channel(f"127.0.0.1:{s.indexer_port}")
        self.indexer = indexer_pb2_grpc.IndexerStub(self._indexer_channel)
        self._embedder_channel = grpc.insecure_channel(f"127.0.0.1:{s.embedder_port}")
        self.embedder = embedder_pb2_grpc.EmbedderStub(self._embedder_channel)
        self.vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{s.milvus_port}"))

    def close(self) -> None:
        self.client.close()
        self._indexer_channel.close()
        self._embedder_channel.close()
        self.vectors.close()

    # -- the run ------------------------------------------------------------
    def run(self, fault: str, dataset: str, folder: Path, expected: Expected, after_done: int,
            timeout_s: float = 600) -> Report:
        """Drops the folder as `dataset`, scans it, and injects the fault (a component's name,
        DELETE, or "" for none) once `after_done` images are indexed; returns what became of it."""
        self.client.upload(folder, dataset)
        job_id = self._retry(lambda: self.indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=dataset),
                                                              timeout=10).id)
        deadline = time.monotonic() + timeout_s
        while (at_fault := self._job(job_id).done) < after_done:
            assert time.monotonic() < deadline, f"{dataset}: nothing indexed before the fault"
            time.sleep(0.05)
        injected = time.monotonic()
        if not fault:
            back_s, job = 0.0, self._wait_finished(job_id, deadline)
            state = indexer_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
        elif fault == DELETE:
            self._retry(lambda: self.indexer.DeleteDataset(indexer_pb2.DeleteDatasetRequest(name=dataset),
                                                           timeout=120))
            back_s, state = time.monotonic() - injected, "deleted"
        else:
            self.kill(fault)
            back_s = self.wait_all_healthy(timeout_s) - injected
            job = self._wait_finished(job_id, deadline)
            state = indexer_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
        done_s = time.monotonic() - injected
        return self.report(fault or "none", state, at_fault, back_s, done_s, dataset,
                           Expected(set(), set()) if fault == DELETE else expected)

    def kill(self, component: str) -> None:
        pid = self.stack.pid(component)
        assert pid is not None, f"{component} is not running"
        os.killpg(pid, signal.SIGKILL)

    def wait_all_healthy(self, timeout_s: float) -> float:
        """Waits until the supervisor has every component back and healthy; returns when."""
        deadline = time.monotonic() + timeout_s
        for component in self.stack.components:
            while self.stack.pid(component.name) is None or not component.healthy():
                assert time.monotonic() < deadline, f"{component.name} did not come back"
                time.sleep(0.2)
        return time.monotonic()

    def report(self, fault: str, state: str, at_fault: int, back_s: float, done_s: float, dataset: str,
               expected: Expected) -> Report:
        version = self._retry(lambda: self.embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(),
                                                                   timeout=10).version)
        images = Counter(e["key"] for e in self._entries(version, "images", dataset, ["key"]))
        objects = Counter((e["key"], e["label"], e["box_x1"], e["box_y1"], e["box_x2"], e["box_y2"])
                          for e in self._entries(version, "objects", dataset,
                                                 ["key", "label", "box_x1", "box_y1", "box_x2", "box_y2"]))
        duplicates = sum(n - 1 for n in images.values()) + sum(n - 1 for n in objects.values())
        lost = len(expected.images - set(images)) + len(expected.objects - set(objects))
        return Report(fault, state, at_fault, round(back_s, 1), round(done_s, 1), sum(images.values()),
                      sum(objects.values()), len(expected.images), len(expected.objects), duplicates, lost)

    # -- helpers --------------------------------------------------------------
    def _entries(self, version: str, level: str, dataset: str, fields: list[str]) -> list[dict]:
        return self._retry(lambda: self.vectors.entries(version, level, dataset, fields))

    def _job(self, job_id: str) -> indexer_pb2.Job:
        return self._retry(lambda: self.indexer.GetJob(indexer_pb2.GetJobRequest(id=job_id), timeout=10))

    def _wait_finished(self, job_id: str, deadline: float) -> indexer_pb2.Job:
        while (job := self._job(job_id)).state not in FINISHED_JOB_STATES:
            assert time.monotonic() < deadline, f"job {job_id} did not end: {job}"
            time.sleep(0.3)
        return job

    @staticmethod
    def _retry(call, timeout_s: float = 120):
        """A call to a component that may be restarting, retried until it answers."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return call()
            except Exception:  # noqa: BLE001 - restarting: any error until it answers
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
