"""Query latency and throughput: `make bench-query` (VECTORS=100000 by default).

Brings the whole stack up on ports of its own with a CLIP of OpenAI ViT-B/32's
shape, fills the images collection with VECTORS synthetic unit vectors (waiting
for the HNSW index to cover them all), and prints p50/p99 latency and QPS of text
and image queries through both doors of the gateway (HTTP and gRPC) at 1, 8 and 32
concurrent clients, next to the same embedding called on the embedder directly and
the same Milvus search called directly, and the gateway's overhead at one client:
(gateway - embedding - search) / (embedding + search), target < 15%.

At one client the calls are made in turn, round after round (embedding, search, the
two chained, the query over HTTP, over gRPC, and over HTTP again through httpx, as
the Python client sends it), so each meets the same background;
timed each in a stretch of its own, they drift apart by several milliseconds on a
2-CPU machine (Milvus's background work, CPU frequency, Triton's threads), which is
as much as the overhead being measured. The two direct calls made one after the
other by this process (embed, then search with the vector) are also timed, and the
overhead printed against that chain too.

Last it times a trivial gRPC call (a health check) made back to back and after 30 ms
of quiet: on a small virtual machine gRPC's threads wake slowly after idling, and each
hop of a query pays that, since every service idles while the query is embedded.

Every request carries a text or an image of its own (a numbered text, a JPEG with a
numbered comment), so the query service's embedding cache never answers: what is
measured is a query embedded anew.
"""

import argparse
import base64
import http.client
import itertools
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.genproto.vizsearch.v1 import (common_pb2, embedder_pb2, embedder_pb2_grpc, gateway_pb2_grpc,
                                                   query_pb2)
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
    return (*percentiles(latencies), requests / (time.perf_counter() - began))


def timed_in_turn(calls: dict[str, Callable], rounds: int) -> dict[str, tuple[float, float, float]]:
    """p50, p99 (ms) and calls per second of each call at one client, made in turn round after
    round, so that every call meets the same background (Milvus's ticks, Triton's threads, the
    other processes on the machine) instead of each its own stretch of time."""
    for call in calls.values():
        call()  # warm up
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            latencies[name].append((time.perf_counter() - started) * 1000)
    return {name: (*percentiles(values), 1000 * len(values) / sum(values)) for name, values in latencies.items()}


def round_trip_after(idle_s: float, call: Callable, calls: int = 200) -> float:
    """Median ms of `call` made after `idle_s` of quiet: what one more hop costs a query whose
    services sat idle while it was embedded."""
    latencies = []
    for _ in range(calls):
        time.sleep(idle_s)
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class HttpClients:
    """One keep-alive connection per thread, through the standard library's http.client: the
    lightest Python HTTP client, so that what is timed is the gateway rather than the client
    (httpx, which the Python client uses, is timed beside it: its own cost shows there)."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        payload = json.dumps(body)
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            try:
                return self._exchange(connection, path, payload)
            except ConnectionError:  # RemoteDisconnected and BrokenPipeError among them
                connection.close()  # the server closed it after its keep-alive timeout: open another
        connection = self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self._exchange(connection, path, payload)

    @staticmethod
    def _exchange(connection: http.client.HTTPConnection, path: str, payload: str) -> tuple[int, dict]:
        connection.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())


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
    parser.add_argument("--rounds", type=int, default=300, help="rounds of the one-client calls, made in turn")
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement at 8 and 32 clients")
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

    http = HttpClients(settings.gateway_http_port)
    httpx_client = httpx.Client(base_url=f"http://127.0.0.1:{settings.gateway_http_port}", timeout=120)
    gateway_channel = grpc.insecure_channel(f"127.0.0.1:{settings.gateway_grpc_port}")
    gateway = gateway_pb2_grpc.GatewayStub(gateway_channel)
    failures: Counter[str] = Counter()

    def over_http(name: str, query: Callable[[], dict]) -> Callable[[], None]:
        def call():
            status, reply = http.post("/v1/search", {"query": query(), "top_k": TOP_K})
            if status != 200:  # counted and shown, so one overload does not end the run
                failures[f"{name}: {status} {reply.get('detail', '')[:80]}"] += 1
            else:
                assert len(reply["results"]) == TOP_K, reply
        return call

    def over_httpx(name: str, query: Callable[[], dict]) -> Callable[[], None]:
        """The same HTTP call through httpx, as vizsearch.Client makes it: the client's own cost shows."""
        def call():
            reply = httpx_client.post("/v1/search", json={"query": query(), "top_k": TOP_K})
            if reply.status_code != 200:
                failures[f"{name}: {reply.status_code} {reply.json().get('detail', '')[:80]}"] += 1
        return call

    def over_grpc(name: str, query: Callable[[], query_pb2.QueryTerm]) -> Callable[[], None]:
        def call():
            try:
                reply = gateway.Search(query_pb2.SearchRequest(query=query(), top_k=TOP_K), timeout=120)
            except grpc.RpcError as error:
                failures[f"{name}: {error.code().name} {(error.details() or '')[:80]}"] += 1
            else:
                assert len(reply.results) == TOP_K, reply
        return call

    kinds = {
        "text": (embed_text, lambda: {"text": numbered_text()}, lambda: query_pb2.QueryTerm(text=numbered_text())),
        "image": (embed_image, lambda: {"image": {"data": base64.b64encode(numbered_jpeg()).decode()}},
                  lambda: query_pb2.QueryTerm(image=common_pb2.ImageInput(data=numbered_jpeg()))),
    }
    print(f"\n{'what':40} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'QPS':>8}")
    overheads = []
    for kind, (embed, http_query, grpc_query) in kinds.items():
        doors = {"HTTP": over_http(f"{kind}, HTTP", http_query), "gRPC": over_grpc(f"{kind}, gRPC", grpc_query)}
        one_client = timed_in_turn({
            f"{kind} embedding (direct)": embed,
            "Milvus search (direct)": lambda: search(query_vector),
            f"{kind} embedding, then search (direct)": lambda: search(embed()),
            **{f"{kind} query (gateway {door})": call for door, call in doors.items()},
            f"{kind} query (gateway HTTP, httpx)": over_httpx(f"{kind}, HTTP, httpx", http_query),
        }, args.rounds)
        for name, (p50, p99, qps) in one_client.items():
            print(f"{name:40} {1:7d} {p50:8.1f} {p99:8.1f} {qps:8.1f}")
        for door, call in doors.items():
            for clients in CLIENTS[1:]:
                p50, p99, qps = timed(call, args.requests, clients)
                print(f"{kind + ' query (gateway ' + door + ')':40} {clients:7d} {p50:8.1f} {p99:8.1f} {qps:8.1f}")
        parts = one_client[f"{kind} embedding (direct)"][0] + one_client["Milvus search (direct)"][0]
        chain = one_client[f"{kind} embedding, then search (direct)"][0]
        for door in doors:
            through = one_client[f"{kind} query (gateway {door})"][0]
            overheads.append(
                f"gateway overhead, {kind} query over {door}, 1 client: {(through - parts) / parts:6.1%} of "
                f"embedding + search ({through:.1f} ms vs {parts:.1f} ms; target < 15%); "
                f"{(through - chain) / chain:6.1%} of the two called in turn ({chain:.1f} ms)")
    health = health_pb2_grpc.HealthStub(channel)
    for idle_s in (0, 0.03):  # 30 ms: about how long the services wait while a text is embedded
        print(f"a gRPC round trip to the embedder (health check) after {idle_s * 1000:.0f} ms idle: "
              f"{round_trip_after(idle_s, lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10)):.2f} ms")
    print()
    for what, count in failures.items():
        print(f"failed: {count} x {what}")
    print("\n".join(overheads))
    gateway_channel.close()
    httpx_client.close()
    channel.close()
    vectors.close()


if __name__ == "__main__":
    main()
