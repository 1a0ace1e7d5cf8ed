"""Ingestion throughput: `make bench-ingest` (N=2000 by default: `make bench-ingest N=500`).

Brings up the whole stack on ports of its own, serving a CLIP with OpenAI
ViT-B/32's shape, and prints:
- the embedder's own images/s on 640x480 JPEGs (batch 64), measured first;
- for N generated 640x480 JPEGs dropped into the bucket: upload time, then
  images/s from the scan request until every image is searchable (counted in
  Milvus with Strong consistency), and from the first upload until then;
- ingestion / embedder (target >= 0.80);
- how long a rescan of the unchanged dataset takes (it embeds nothing).
"""

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import embedder_pb2, embedder_pb2_grpc, indexer_pb2, indexer_pb2_grpc
from services.common.storage import ObjectStore
from services.common.vectors import VectorSettings, VectorStore
from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests import imagegen
from tests.bench.bench_embed import service_images_per_s
from tests.checkpoint_cache import vit_b_32_checkpoint

PORT_SHIFT = 12_000  # beyond the test stacks' ports
DATASET = "bench"
FINISHED = {indexer_pb2.JOB_STATE_SUCCEEDED, indexer_pb2.JOB_STATE_COMPLETED_WITH_FAILURES, indexer_pb2.JOB_STATE_FAILED}


def wait_for_job(indexer, job_id: str) -> indexer_pb2.Job:
    while (job := indexer.GetJob(indexer_pb2.GetJobRequest(id=job_id), timeout=30)).state not in FINISHED:
        time.sleep(0.2)
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--distinct", type=int, default=200, help="distinct scenes generated (each reused, re-encoded)")
    args = parser.parse_args()

    ports = StackSettings.shifted_ports(PORT_SHIFT)
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
                version = embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=30).version
                embed_rate = service_images_per_s(embedder, batch=64, rounds=4, clients=2)
                run(args, settings, indexer, version, embed_rate)
        finally:
            stack.down(log=lambda line: None)


def run(args, settings: StackSettings, indexer, version: str, embed_rate: float) -> None:
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
    print(f"rescan of the unchanged dataset:      {rescan_s:8.2f} s ({rescan.skipped} unchanged, 0 embedded)")


if __name__ == "__main__":
    main()
