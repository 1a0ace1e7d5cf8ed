"""Shared fixtures. The `stack` fixture brings up the real local stack, once per
test session, with the same launcher as `make up` but its own run directory and
ports (so a developer's running stack is left alone), serving the committed demo
CLIP (models/vizsearch-demo-clip): small enough to embed fast on a CPU, and trained,
so search results mean something."""

import json
import socket
import time
from pathlib import Path

import grpc
import httpx
import pytest
import redis

from services.common.genproto.vizsearch.v1 import embedder_pb2_grpc
from services.gateway.auth import hash_key
from services.localstack.config import DEMO_MODEL, StackSettings
from services.localstack.launcher import Stack
from tests.otlp_receiver import OtlpReceiver

TEST_PORT_SHIFT = 10_000  # every default port + this, e.g. Milvus on 29530
# Short, so that a killed worker's batch comes back within seconds; renewed every
# third of it, so a live worker's lease never lapses.
TEST_LEASE_S = 6
TEST_BATCH_SIZE = 8
TEST_WEBHOOK_TOKEN = "test-webhook-token"
# API keys of the test gateway: name -> (key, role, datasets it may see, rate limit per minute)
TEST_KEYS = {
    "admin": ("admin-secret", "admin", None, None),
    "writer": ("write-secret", "write", None, None),
    "reader": ("read-secret", "read", None, None),
    "street-only": ("street-secret", "read", ["street"], None),
    "flood": ("flood-secret", "read", None, 5),
    # The schemathesis test's: hundreds of requests a minute, without spending another key's budget.
    "fuzzer": ("fuzz-secret", "read", None, 0),
}


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return DEMO_MODEL


@pytest.fixture(scope="session")
def dimension(model_dir) -> int:
    """The served model's embedding dimension."""
    return json.loads((model_dir / "config.json").read_text())["projection_dim"]


@pytest.fixture(scope="session")
def otlp():
    """Where the test stack's services and Triton send their traces."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(tmp_path_factory, model_dir, otlp) -> Stack:
    ports = StackSettings.shifted_ports(TEST_PORT_SHIFT)
    for port in ports.values():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is taken: a test stack from an earlier run may still be up")
    run_dir = tmp_path_factory.mktemp("run")
    keys_file = run_dir / "api-keys.json"
    keys_file.write_text(json.dumps([
        {"name": name, "sha256": hash_key(key), "role": role, "datasets": datasets, "rate_limit_per_minute": limit}
        for name, (key, role, datasets, limit) in TEST_KEYS.items()]))
    settings = StackSettings(
        run_dir=run_dir, model=str(model_dir), reconcile_interval_s=2, api_keys_file=keys_file,
        task_lease_s=TEST_LEASE_S, sweep_interval_s=1, health_probe_interval_s=1, ingest_batch_size=TEST_BATCH_SIZE,
        webhook_token=TEST_WEBHOOK_TOKEN, otlp_endpoint=otlp.endpoint, **ports,
    )
    stack = Stack(settings)
    try:
        stack.up(log=lambda line: print(line))
        yield stack
    finally:
        stack.down(log=lambda line: print(line))


@pytest.fixture(scope="session")
def lone_redis(tmp_path_factory):
    """Just a Redis server, for unit tests of what the indexer keeps there."""
    ports = StackSettings.shifted_ports(TEST_PORT_SHIFT + 1_500)
    stack = Stack(StackSettings(run_dir=tmp_path_factory.mktemp("redis"), model="/unused", **ports), only=["redis"])
    stack._ensure_model = lambda log: None
    stack.up(log=lambda _: None, supervise=False)
    client = redis.Redis(port=stack.settings.redis_port)
    try:
        yield client
    finally:
        client.close()
        stack.down(log=lambda _: None)


@pytest.fixture
def fresh_redis(lone_redis):
    lone_redis.flushall()
    return lone_redis


@pytest.fixture(scope="session")
def embedder_channel(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.embedder_port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def embedder(embedder_channel):
    return embedder_pb2_grpc.EmbedderStub(embedder_channel)


@pytest.fixture(scope="module")
def api(stack):
    """An HTTP client of the test stack's gateway."""
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.gateway_http_port}", timeout=120) as client:
        yield client


def wait_for_job(api: httpx.Client, job: dict, timeout_s: float = 240) -> dict:
    """The job (as the HTTP API shows it) once it has ended."""
    deadline = time.monotonic() + timeout_s
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = api.get(f"/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {TEST_KEYS['reader'][0]}"}).json()
    return job
