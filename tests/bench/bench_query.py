"""Query recall, latency and throughput: `make bench-query` (VECTORS=100000 by default).

Brings the whole stack up on ports of its own with a CLIP of OpenAI ViT-B/32's
shape, fills the images collection with VECTORS synthetic unit vectors, clustered
as CLIP embeddings are (see ClusteredVectors), waiting for the index
(VIZSEARCH_VECTOR_INDEX, HNSW by default) to cover them all, and prints the insert
rate, the index build time and the Milvus process's memory (RSS) once loaded. Then
recall: for 200 held-out queries from the same distribution, recall@10 and recall@100
of Milvus's search against exact search (numpy over the same vectors), with its p50
latency, for a range of search breadths (ef; nprobe for IVF_SQ8): the curve the query
service's VIZSEARCH_SEARCH_EF is chosen from. Then p50/p99 latency and QPS of text
and image queries through both doors of the gateway (HTTP and gRPC) at 1, 8 and 32
concurrent clients, next to the same embedding then the same Milvus search (with the
query service's ef) called directly; and the gateway's cost: at one client its p50 less
that of embedding then search (target: at most 2 ms), at 8 and 32 its QPS against
theirs (target: at least 0.95); and the CPU milliseconds each process (gateway, query,
embedder, Triton, Milvus, and everything together) spends per request at 32 clients:
on a 2-CPU machine, what the throughput is divided by.

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
import os
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
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.genproto.vizsearch.v1 import (common_pb2, embedder_pb2, embedder_pb2_grpc, gateway_pb2_grpc,
                                                   query_pb2)
from services.common.vectors import Entry, SearchBreadth, VectorSettings, VectorStore, index_build_params
from services.indexer.catalog import Catalog
from services.localstack.config import StackSettings
from services.query.config import QuerySettings
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


class ClusteredVectors:
    """Unit vectors shaped like CLIP image embeddings rather than uniform noise: they share a
    common direction (CLIP's embeddings fill a narrow cone: unrelated images still score
    0.2-0.5) and gather in many clusters of uneven size (near-identical frames of a scene,
    one object class), each with its own spread."""

    def __init__(self, dimension: int, clusters: int = 2000, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.rng = rng
        mean = rng.normal(size=dimension)
        self.mean = mean / np.linalg.norm(mean)
        centres = rng.normal(size=(clusters, dimension))
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.weights = rng.pareto(1.5, clusters) + 0.1  # a few big clusters, many small ones
        self.weights /= self.weights.sum()
        self.spread = rng.uniform(0.6, 1.4, clusters)

    def sample(self, count: int) -> np.ndarray:
        which = self.rng.choice(len(self.centres), size=count, p=self.weights)
        noise = self.rng.normal(size=(count, self.mean.size)) / np.sqrt(self.mean.size)
        block = 1.2 * self.mean + self.centres[which] + noise * self.spread[which, None]
        return (block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32)


def fill(vectors: VectorStore, version: str, source: ClusteredVectors, count: int, dataset: str = DATASET,
         first: int = 0) -> tuple[np.ndarray, float, float]:
    """Inserts `count` vectors (keys numbered from `first`) and waits until the index covers
    them; returns the vectors, the insert's seconds and the seconds until they are indexed
    and compacted."""
    started = time.perf_counter()
    name = vectors.collection("images", version)
    kept = np.empty((count, source.mean.size), dtype=np.float32)
    for start in range(0, count, INSERT_BATCH):
        block = kept[start:start + INSERT_BATCH] = source.sample(min(INSERT_BATCH, count - start))
        vectors.client.insert(name, [Entry(dataset, f"{first + start + i:07d}.jpg", v.tolist(), 640, 480,
                                           f"{first + start + i:064x}", 0).row(version)
                                     for i, v in enumerate(block)])
    vectors.client.flush(name)
    inserted = time.perf_counter()
    count += first
    wait_for_index(vectors, name, count)
    # Merge the small segments now: Milvus would otherwise compact (and re-index) them in
    # the background during the measurements, starving Triton of CPU on a small machine.
    job = vectors.client.compact(name)
    deadline = time.monotonic() + 3600
    while "Completed" not in str(vectors.client.get_compaction_state(job)) and time.monotonic() < deadline:
        time.sleep(2)
    wait_for_index(vectors, name, count)
    return kept, inserted - started, time.perf_counter() - inserted


def exact_neighbours(stored: np.ndarray, queries: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """The indices of each query's k nearest stored vectors by cosine, best first (brute force)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(stored), chunk):
        scores = queries @ stored[start:start + chunk].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        best = np.concatenate([best, top + start], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores, best = np.take_along_axis(best_scores, keep, 1), np.take_along_axis(best, keep, 1)
    return best


def breadths(index_type: str) -> tuple[str, list[SearchBreadth]]:
    """The search-breadth parameter of the index type and the values its curve is drawn at."""
    if index_type == "IVF_SQ8":
        return "nprobe", [SearchBreadth(ef=0, nprobe=n) for n in (4, 8, 16, 32, 64, 128)]
    return ("search_list" if index_type == "DISKANN" else "ef"), [SearchBreadth(ef=e, nprobe=0)
                                                                  for e in (16, 32, 64, 128, 256, 512)]


def recall_curve(vectors: VectorStore, version: str, stored: np.ndarray, source: ClusteredVectors,
                 queries: int = 200) -> list[tuple[int, float, float, float]]:
    """(breadth, recall@10, recall@100, p50 ms at top 10) of Milvus's search against exact search."""
    asked = source.sample(queries)
    truth = exact_neighbours(stored, asked, 100)
    name = vectors.collection("images", version)
    index_type = vectors.settings.vector_index
    curve = []
    for breadth in breadths(index_type)[1]:
        found, latencies = {10: [], 100: []}, []
        for k in (10, 100):
            for i, query in enumerate(asked):
                started = time.perf_counter()
                hits = vectors.client.search(name, data=[query.tolist()], limit=k, output_fields=["key"],
                                             search_params={"metric_type": "COSINE",
                                                            "params": breadth.params(index_type, k)},
                                             consistency_level="Bounded")[0]
                if k == 10:
                    latencies.append((time.perf_counter() - started) * 1000)
                keys = {int(hit["entity"]["key"].split(".")[0]) for hit in hits}
                found[k].append(len(keys & set(truth[i, :k].tolist())) / k)
        value = breadth.nprobe if index_type == "IVF_SQ8" else breadth.ef
        curve.append((value, float(np.mean(found[10])), float(np.mean(found[100])), statistics.median(latencies)))
    return curve


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (the embedded Milvus runs its server as a child
    of the launcher's wrapper)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append(current)
    return found


def rss_bytes(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024
        except (FileNotFoundError, StopIteration):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process tree so far."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (FileNotFoundError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


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
            run(args, settings, stack)
        finally:
            stack.down(log=lambda line: None)


def run(args, settings: StackSettings, stack: Stack) -> None:
    vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{settings.milvus_port}"))
    channel = grpc.insecure_channel(f"127.0.0.1:{settings.embedder_port}")
    embedder = embedder_pb2_grpc.EmbedderStub(channel)
    model = embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=60)
    vectors.ensure_collections(model.version, model.dimension)
    # Known to the catalog, as an ingested dataset is: the gateway drops hits of datasets it does not know.
    with redis.Redis(port=settings.redis_port) as catalog_redis:
        Catalog(catalog_redis, default_box_margin=0.1).register(DATASET, explicit=True)
    source = ClusteredVectors(model.dimension)
    rss_empty = rss_bytes(stack.pid("milvus"))
    stored, insert_s, index_s = fill(vectors, model.version, source, args.vectors)
    rss_loaded = rss_bytes(stack.pid("milvus"))
    sample = stored[np.random.default_rng(1).choice(len(stored), 2000, replace=False)]
    cosines = sample @ sample.T
    print(f"index: {args.vectors} vectors of {model.dimension} dimensions (clustered: mean cosine between two "
          f"{cosines[np.triu_indices(len(sample), 1)].mean():.2f}, to the nearest of 2,000 "
          f"{np.sort(cosines, axis=1)[:, -2].mean():.2f}), {vectors.settings.vector_index} "
          f"{index_build_params(vectors.settings)}")
    print(f"insert: {args.vectors / insert_s:,.0f} vectors/s ({insert_s:.0f} s); index build and compaction: "
          f"{index_s:.0f} s; Milvus RSS {rss_empty / 2**30:.2f} GiB empty, {rss_loaded / 2**30:.2f} GiB loaded "
          f"(vectors alone: {stored.nbytes / 2**30:.2f} GiB)")
    print(f"\n{breadths(vectors.settings.vector_index)[0]:>11} {'recall@10':>10} {'recall@100':>11} "
          f"{'p50 ms (top 10, direct)':>24}")
    for breadth, at_10, at_100, p50 in recall_curve(vectors, model.version, stored, source):
        print(f"{breadth:11d} {at_10:10.3f} {at_100:11.3f} {p50:24.1f}")
    del stored

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

    query_settings = QuerySettings()  # what the query service searches with
    served_breadth = SearchBreadth(query_settings.search_ef, query_settings.search_nprobe)

    def search(vector):
        return vectors.client.search(
            vectors.collection("images", model.version), data=[[float(v) for v in vector]], limit=TOP_K,
            output_fields=["dataset", "key", "width", "height"], consistency_level="Bounded",
            search_params={"metric_type": "COSINE",
                           "params": served_breadth.params(vectors.settings.vector_index, TOP_K)})

    processes = {name: stack.pid(name) for name in ("gateway", "query", "embedder", "triton", "milvus")}
    processes["everything"] = os.getpid()  # the stack runs as this benchmark's children
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
        many_clients, cpu = {}, {}
        for clients in CLIENTS[1:]:
            for door, call in {"direct": lambda: search(embed()), **doors}.items():
                before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                many_clients[clients, door] = timed(call, args.requests, clients)
                cpu[clients, door] = {name: (cpu_seconds(pid) - before[name]) * 1000 / (args.requests + 1)
                                      for name, pid in processes.items()}
        for (clients, door), (p50, p99, qps) in many_clients.items():
            name = f"{kind} embedding, then search (direct)" if door == "direct" else f"{kind} query (gateway {door})"
            print(f"{name:40} {clients:7d} {p50:8.1f} {p99:8.1f} {qps:8.1f}")
        chain = one_client[f"{kind} embedding, then search (direct)"][0]
        for door in doors:
            through = one_client[f"{kind} query (gateway {door})"][0]
            overheads.append(f"gateway overhead, {kind} query over {door}, 1 client: {through - chain:+.1f} ms "
                             f"({through:.1f} ms against {chain:.1f} ms for embedding then search; target <= 2 ms)")
            for clients in CLIENTS[1:]:
                ratio = many_clients[clients, door][2] / many_clients[clients, "direct"][2]
                overheads.append(f"gateway throughput, {kind} query over {door}, {clients} clients: {ratio:.2f} "
                                 f"of embedding then search called directly (target >= 0.95)")
        # Where the CPU goes, per request: on two CPUs, the gateway's and the query service's
        # milliseconds are taken from Triton, which bounds the throughput.
        for door in ("direct", *doors):
            spent = cpu[CLIENTS[-1], door]
            overheads.append(f"CPU ms per {kind} query at {CLIENTS[-1]} clients, {door}: " + ", ".join(
                f"{name} {ms:.1f}" for name, ms in spent.items() if name != "everything")
                + f"; everything (the stack and this benchmark) {spent['everything']:.1f}")
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
