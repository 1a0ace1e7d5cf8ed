"""Query latency and throughput: `make bench-query` (VECTORS=100000 by default).

Brings the whole stack up on ports of its own with a CLIP of OpenAI ViT-B/32's
shape, fills the images collection with VECTORS synthetic unit vectors (waiting
for the HNSW index to cover them all), and prints p50/p99 latency and QPS of text
and image queries through the gateway's HTTP API at 1, 8 and 32 concurrent
clients, next to the same embedding called on the embedder directly and the same
Milvus search called directly, and the gateway's overhead at one client:
(gateway - embedding - search) / (embedding + search), target < 15%.

Every request carries a text or an image of its own (a numbered text, a JPEG with a
numbered comment), so the query service's embedding cache never answers: what is
measured is a query embedded anew. The same two calls made one after the other by this process (embed, then search
with the vector) are also timed: on a machine with few CPUs that chain is slower
than the sum of its parts timed apart (Triton, the embedder and Milvus wake in turn
and share the cores), so the overhead is also printed against the chain.
"""

import argparse
import base64
import itertools
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np

from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.common.vectors import VectorSettings, VectorStore, entry_id
from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests import imagegen
from tests.checkpoint_cache import vit_b_32_checkpoint

PORT_SHIFT = 12_000
DATASET = "bench"
TOP_K = 20
CLIENTS = (1, 8, 32)
INSERT_BATCH = 5000


def timed(call, requests: int, clients: int) -> tuple[float, float, float]:
    """p50 and p99 latency in ms, and calls per second, of `requests` calls from `clients` threads."""
    call()  # warm up
    latencies = []

    def one(_):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return statistics.median(latencies), latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], \
        requests / elapsed


def fill(vectors: VectorStore, version: str, dimension: int, count: int) -> float:
    """Inserts `count` random unit vectors and waits until the index covers them; returns seconds."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    name = vectors.collection("images", version)
    for start in range(0, count, INSERT_BATCH):
        block = rng.normal(size=(min(INSERT_BATCH, count - start), dimension)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        rows = [{"id": entry_id(version, DATASET, f"{start + i:07d}.jpg"), "vector": v.tolist(), "dataset": DATASET,
                 "key": f"{start + i:07d}.jpg", "width": 640, "height": 480, "sha256": "", "label": "",
                 "source": "", "score": 0.0, "box_x1": 0.0, "box_y1": 0.0, "box_x2": 640.0, "box_y2": 480.0,
                 "box_area": 640.0 * 480, "indexed_at": 0, "objects": 0, "boxes": ""} for i, v in enumerate(block)]
        vectors.client.insert(name, rows)
    vectors.client.flush(name)
    wait_for_index(vectors, name, count)
    # Merge the small segments now: Milvus would otherwise compact (and re-index) them in
    # the background during the measurements, starving Triton of CPU on a small machine.
    job = vectors.client.compact(name)
    deadline = time.monotonic() + 600
    while "Completed" not in str(vectors.client.get_compaction_state(job)) and time.monotonic() < deadline:
        time.sleep(2)
    wait_for_index(vectors, name, count)
    return time.perf_counter() - started


def wait_for_index(vectors: VectorStore, name: str, count: int) -> None:
    while True:
        info = vectors.client.describe_index(name, "vector")
        if info["indexed_rows"] >= count and not info.get("pending_index_rows"):
            break
        time.sleep(2)
    assert info["total_rows"] >= count, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100, help="requests per measurement at one client (x4 above)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as run_dir:
        settings = StackSettings(run_dir=Path(run_dir), model=str(vit_b_32_checkpoint()), reconcile_interval_s=0,
                                 search_consistency="Bounded", rate_limit_per_minute=0,
                                 **StackSettings.shifted_ports(PORT_SHIFT))
        stack = Stack(settings)
        try:
            stack.up(log=lambda line: None)
            run(args, settings)
        finally:
            stack.down(log=lambda line: None)


def run(args, settings: StackSettings) -> None:
    vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{settings.milvus_port}"))
    channel = grpc.insecure_channel(f"127.0.0.1:{settings.embedder_port}")
    embedder = embedder_pb2_grpc.EmbedderStub(channel)
    model = embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=60)
    vectors.ensure_collections(model.version, model.dimension)
    fill_s = fill(vectors, model.version, model.dimension, args.vectors)
    print(f"index: {args.vectors} vectors of {model.dimension} dimensions, HNSW, filled, compacted and indexed "
          f"in {fill_s:.0f}s")

    text = "taxis waiting at a crosswalk at night"
    jpeg = imagegen.encode(imagegen.scene(640, 480, seed=7), "JPEG", quality=90)
    query_vector = np.asarray(embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=[text]), timeout=60)
                              .vectors[0].values)
    numbers = itertools.count()

    def numbered_text() -> str:
        return f"{text} {next(numbers)}"

    def numbered_jpeg() -> bytes:
        """The same picture with a numbered JPEG comment (COM segment) after its start marker."""
        comment = str(next(numbers)).encode()
        return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]

    def embed_text():
        return embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=[numbered_text()]), timeout=60) \
            .vectors[0].values

    def embed_image():
        return embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(
            images=[common_pb2.ImageInput(data=numbered_jpeg())], fail_on_item_error=True), timeout=60) \
            .results[0].vector.values

    def search(vector):
        return vectors.client.search(
            vectors.collection("images", model.version), data=[[float(v) for v in vector]], limit=TOP_K,
            output_fields=["dataset", "key", "width", "height"], consistency_level="Bounded",
            search_params={"metric_type": "COSINE", "params": {"ef": 64}})

    direct = {
        "text embedding": embed_text,
        "image embedding": embed_image,
        "Milvus search": lambda: search(query_vector),
        "text embedding, then search": lambda: search(embed_text()),
        "image embedding, then search": lambda: search(embed_image()),
    }
    http = httpx.Client(base_url=f"http://127.0.0.1:{settings.gateway_http_port}", timeout=120,
                        limits=httpx.Limits(max_connections=64))
    through_gateway = {
        "text query": lambda: {"query": {"text": numbered_text()}, "top_k": TOP_K},
        "image query": lambda: {"query": {"image": {"data": base64.b64encode(numbered_jpeg()).decode()}},
                                "top_k": TOP_K},
    }

    failures: dict[str, int] = {}

    def gateway_call(body, name):
        def call():
            reply = http.post("/v1/search", json=body())
            if reply.status_code != 200:  # counted and shown, so one overload does not end the run
                key = f"{reply.status_code} {reply.json().get('detail', '')[:80]}"
                failures[f"{name}: {key}"] = failures.get(f"{name}: {key}", 0) + 1
            else:
                assert len(reply.json()["results"]) == TOP_K, reply.text
        return call

    print(f"\n{'what':36} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'QPS':>8}")
    p50 = {}
    for name, call in direct.items():
        p50[name], p99, qps = timed(call, args.requests, 1)
        print(f"{name + ' (direct)':36} {1:7d} {p50[name]:8.1f} {p99:8.1f} {qps:8.1f}")
    for name, body in through_gateway.items():
        for clients in CLIENTS:
            median, p99, qps = timed(gateway_call(body, f"{name}, {clients} clients"),
                                     args.requests * (1 if clients == 1 else 4), clients)
            if clients == 1:
                p50[name] = median
            print(f"{name + ' (gateway)':36} {clients:7d} {median:8.1f} {p99:8.1f} {qps:8.1f}")
    print()
    for what, count in failures.items():
        print(f"failed: {count} x {what}")
    for query, embedding in (("text query", "text embedding"), ("image query", "image embedding")):
        parts, chain = p50[embedding] + p50["Milvus search"], p50[f"{embedding}, then search"]
        print(f"gateway overhead, {query}, 1 client: {(p50[query] - parts) / parts:6.1%} of embedding + search "
              f"({p50[query]:.1f} ms vs {parts:.1f} ms; target < 15%); {(p50[query] - chain) / chain:6.1%} of "
              f"the two called in turn ({chain:.1f} ms)")
    http.close()
    channel.close()
    vectors.close()


if __name__ == "__main__":
    main()
