"""Ingestion throughput: `make bench-ingest` (N=2000 by default: `make bench-ingest N=500`).

Brings up the whole stack on ports of its own, serving a CLIP with OpenAI
ViT-B/32's shape, and prints:
- the plain transformers fp32 forward of the same image tower at batch 64 (images/s,
  measured before the stack starts), and what Triton's CPU instances run
  (VIZSEARCH_CPU_RUNTIME=int8 to measure int8);
- the embedder's own images/s on 640x480 JPEGs (batch 64);
- for N generated 640x480 JPEGs dropped into the bucket: upload time, then
  images/s from the scan request until every image is searchable (counted in
  Milvus with Strong consistency), and from the first upload until then;
- ingestion / embedder (target >= 0.80) and ingestion / transformers forward (target >= 1.0);
- how long a rescan of the unchanged dataset takes (it embeds nothing);
- annotated: A (--annotated, 200 by default; 0 skips it) 1280x720 JPEGs with 10 boxes
  each, in a COCO file: images/s, boxes/s and embeddings/s from the scan request until
  every image and box is searchable, beside the embedder's embeddings/s for the same
  crops sent as pre-cut JPEGs (target >= 0.80), and over the transformers forward (target >= 1.0).
"""

import argparse
import json
import tempfile
import time
from dataclasses import astuple
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np

from services.common import images
from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import embedder_pb2, embedder_pb2_grpc, indexer_pb2, indexer_pb2_grpc
from services.common.storage import ObjectStore
from services.common.vectors import VectorSettings, VectorStore
from services.common.wire import FINISHED_JOB_STATES
from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests import imagegen
from tests.bench.bench_embed import direct_images_per_s, service_images_per_s
from tests.checkpoint_cache import vit_b_32_checkpoint

PORT_SHIFT = 12_000  # beyond the test stacks' ports
DATASET = "bench"
ANNOTATED = "bench-annotated"


def wait_for_job(indexer, job_id: str) -> indexer_pb2.Job:
    while (job := indexer.GetJob(indexer_pb2.GetJobRequest(id=job_id), timeout=30)).state not in FINISHED_JOB_STATES:
        time.sleep(0.2)
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--distinct", type=int, default=200, help="distinct scenes generated (each reused, re-encoded)")
    parser.add_argument("--annotated", type=int, default=200, help="annotated 1280x720 images (0: none)")
    args = parser.parse_args()

    ports = StackSettings.shifted_ports(PORT_SHIFT)
    forward_rate = direct_images_per_s(vit_b_32_checkpoint(), batch=64, rounds=3)
    print(f"transformers fp32 forward:            {forward_rate:8.2f} images/s (batch 64, no stack running)")
    with tempfile.TemporaryDirectory() as run_dir:
        # The reconciler is off: the benchmark starts the scan itself, at a known time.
        settings = StackSettings(run_dir=Path(run_dir), model=str(vit_b_32_checkpoint()), reconcile_interval_s=0,
                                 **ports)
        stack = Stack(settings)
        try:
            stack.up(log=lambda line: None)
            with grpc.insecure_channel(f"127.0.0.1:{settings.embedder_port}") as embedder_channel, \
                    grpc.insecure_channel(f"127.0.0.1:{settings.indexer_port}") as indexer_channel:
                embedder = embedder_pb2_grpc.EmbedderStub(embedder_channel)
                indexer = indexer_pb2_grpc.IndexerStub(indexer_channel)
                model = embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=30)
                print(f"Triton runs the towers as {model.runtime}")
                embed_rate = service_images_per_s(embedder, batch=64, rounds=4, clients=2)
                run(args, settings, indexer, model.version, embed_rate, forward_rate)
                if args.annotated:
                    run_annotated(args, settings, indexer, embedder, model.version, forward_rate)
        finally:
            stack.down(log=lambda line: None)


def run(args, settings: StackSettings, indexer, version: str, embed_rate: float, forward_rate: float) -> None:
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{settings.storage_port}"))
    vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{settings.milvus_port}"))
    scenes = [imagegen.scene(640, 480, seed=i) for i in range(args.distinct)]
    # Each image distinct in its bytes (so none is skipped as a duplicate of another).
    payloads = [imagegen.encode(scenes[i % args.distinct], "JPEG", quality=85 + i // args.distinct % 10,
                                comment=str(i).encode()) for i in range(args.images)]

    dropped = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: store.put(DATASET, f"img{i:06d}.jpg", payloads[i], "image/jpeg"), range(args.images)))
    uploaded = time.perf_counter()
    job = wait_for_job(indexer, indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=DATASET), timeout=30).id)
    while vectors.count(version, "images", DATASET) < args.images:
        time.sleep(0.2)
    searchable = time.perf_counter()
    assert job.done == args.images, job

    rescan_started = time.perf_counter()
    rescan = wait_for_job(indexer, indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=DATASET), timeout=30).id)
    rescan_s = time.perf_counter() - rescan_started
    assert rescan.skipped == args.images and rescan.done == 0, rescan
    vectors.close()

    index_rate = args.images / (searchable - uploaded)
    drop_rate = args.images / (searchable - dropped)
    print(f"embedder alone:                       {embed_rate:8.2f} images/s (640x480 JPEG, batch 64, 2 clients)")
    print(f"upload of {args.images} images:              {uploaded - dropped:8.2f} s")
    print(f"ingestion, scan to searchable:        {index_rate:8.2f} images/s")
    print(f"ingestion, drop to searchable:        {drop_rate:8.2f} images/s")
    print(f"ingestion / embedder:                 {index_rate / embed_rate:8.2f}  (target >= 0.80; "
          f"{drop_rate / embed_rate:.2f} counting the upload)")
    print(f"ingestion / transformers forward:     {index_rate / forward_rate:8.2f}  (target >= 1.0)")
    print(f"rescan of the unchanged dataset:      {rescan_s:8.2f} s ({rescan.skipped} unchanged, 0 embedded)")


def annotated_dataset(count: int, distinct: int, boxes_per_image: int = 10):
    """count 1280x720 JPEGs (distinct in their bytes), their boxes, and a COCO file of them."""
    rng = np.random.default_rng(7)
    scenes = [imagegen.scene(1280, 720, seed=1000 + i) for i in range(min(distinct, count))]
    files, coco = {}, {"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "car"}, {"id": 2, "name": "bus"}, {"id": 3, "name": "person"}]}
    boxes = {}
    for i in range(count):
        key = f"frame{i:06d}.jpg"
        files[key] = imagegen.encode(scenes[i % len(scenes)], "JPEG", quality=85 + i // len(scenes) % 10,
                                     comment=str(i).encode())
        coco["images"].append({"id": i, "file_name": key, "width": 1280, "height": 720})
        for j in range(boxes_per_image):
            w, h = (int(v) for v in rng.integers(40, 320, 2))
            x, y = int(rng.integers(0, 1280 - w)), int(rng.integers(0, 720 - h))
            coco["annotations"].append({"id": len(coco["annotations"]), "image_id": i, "category_id": 1 + j % 3,
                                        "bbox": [x, y, w, h]})
            boxes.setdefault(key, []).append(images.Box(x, y, x + w, y + h))
    return files, boxes, scenes, json.dumps(coco).encode()


def run_annotated(args, settings: StackSettings, indexer, embedder, version: str, forward_rate: float) -> None:
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{settings.storage_port}"))
    vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{settings.milvus_port}"))
    files, boxes, scenes, coco = annotated_dataset(args.annotated, args.distinct)
    total_boxes = sum(len(b) for b in boxes.values())
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: store.put(ANNOTATED, kv[0], kv[1], "image/jpeg"), files.items()))
    store.put(ANNOTATED, "_annotations/boxes.json", coco, "application/json")
    started = time.perf_counter()
    job = wait_for_job(indexer, indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=ANNOTATED), timeout=30).id)
    while (vectors.count(version, "images", ANNOTATED) < args.annotated
           or vectors.count(version, "objects", ANNOTATED) < total_boxes):
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    assert (job.done, job.objects) == (args.annotated, total_boxes), job
    vectors.close()

    # The same crops (grown by the indexer's margin), cut here and sent as JPEGs.
    first = next(iter(boxes))
    crops = [imagegen.encode(scenes[0].crop(tuple(round(v) for v in astuple(images.grow(box, 0.1, 1280, 720)))),
                             "JPEG", quality=90) for box in boxes[first]]
    crops = (crops * 7)[:64]
    raw = service_images_per_s(embedder, batch=64, rounds=4, clients=2, jpegs=crops)
    embeddings = (args.annotated + total_boxes) / seconds
    print(f"annotated ingestion of {args.annotated} 1280x720 images with {total_boxes} boxes, scan to searchable:")
    print(f"  images/s {args.annotated / seconds:8.2f}   boxes/s {total_boxes / seconds:8.2f}   "
          f"embeddings/s {embeddings:8.2f}")
    print(f"embedder alone on the pre-cut crops:  {raw:8.2f} embeddings/s (JPEG crops, batch 64, 2 clients)")
    print(f"annotated ingestion / pre-cut crops:  {embeddings / raw:8.2f}  (target >= 0.80)")
    print(f"annotated embeddings / transformers forward: {embeddings / forward_rate:5.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
