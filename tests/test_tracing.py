"""OpenTelemetry traces: the test stack sends every service's spans, and Triton's, to an
in-memory OTLP receiver (tests/otlp_receiver.py). One request is one trace from the HTTP
door to Triton; one scan is one trace from the HTTP door through Celery to the workers;
with no endpoint, nothing of OpenTelemetry is even imported."""

import os
import secrets
import subprocess
import sys
import time

import httpx
import pytest

from services.common.config import StorageSettings
from services.common.storage import ObjectStore
from tests import imagegen
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.stack


def traceparent() -> tuple[str, str]:
    """A new W3C trace context, as a caller that traces would send it."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def services_in(otlp, trace_id: str, wanted: set[str], timeout_s: float = 30) -> dict[str, list]:
    """The trace's spans by service, once every wanted service has sent some (exporters batch
    for up to 5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans: dict[str, list] = {}
        for span in otlp.trace(trace_id):
            spans.setdefault(span.service, []).append(span)
        if wanted <= set(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


@pytest.fixture(scope="module")
def gateway(stack) -> str:
    return f"http://127.0.0.1:{stack.settings.gateway_http_port}"


def test_a_search_is_one_trace_from_the_http_door_to_triton(otlp, gateway):
    wanted = {"vizsearch-gateway", "vizsearch-query", "vizsearch-embedder", "vizsearch-triton"}
    # A second try with a new trace: Triton's batching exporter can lose a span while the
    # shared stack's earlier tests' spans fill its queue (seen once in a full run).
    for _ in range(2):
        trace_id, parent = traceparent()
        reply = httpx.post(f"{gateway}/v1/search", json={"query": {"text": f"a red bus {trace_id}"}},  # new: embedded
                           headers={"Authorization": f"Bearer {TEST_KEYS['reader'][0]}", "traceparent": parent},
                           timeout=30)
        assert reply.status_code == 200
        spans = services_in(otlp, trace_id, wanted)
        if wanted <= set(spans):
            break
    assert wanted <= set(spans), f"the trace reached only {sorted(spans)}"
    names = {s.name for service in spans.values() for s in service}
    assert "POST /v1/search" in names
    assert {"/vizsearch.v1.Query/Search", "/vizsearch.v1.Embedder/EmbedTexts"} <= names
    # Every span but the caller's own root has its parent in the trace.
    ids = {s.span_id for service in spans.values() for s in service}
    orphans = [s for service in spans.values() for s in service if s.parent_id not in ids and s.parent_id != parent[36:52]]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"


def test_a_scan_is_one_trace_through_celery_to_the_workers(stack, otlp, gateway):
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))
    dataset = f"traced-{secrets.token_hex(3)}"
    for i in range(3):
        store.put(dataset, f"{i}.jpg", imagegen.encode(imagegen.scene(96, 64, seed=300 + i)))
    trace_id, parent = traceparent()
    reply = httpx.post(f"{gateway}/v1/datasets/{dataset}/scan",
                       headers={"Authorization": f"Bearer {TEST_KEYS['writer'][0]}", "traceparent": parent}, timeout=30)
    assert reply.status_code in (200, 202), reply.text
    wanted = {"vizsearch-gateway", "vizsearch-indexer", "vizsearch-worker", "vizsearch-embedder"}
    spans = services_in(otlp, trace_id, wanted, timeout_s=60)
    assert wanted <= set(spans), f"the trace reached only {sorted(spans)}"
    worker = {s.name for s in spans["vizsearch-worker"]}
    assert any(name.startswith("run/") for name in worker), worker  # the Celery tasks themselves
    assert "/vizsearch.v1.Embedder/EmbedImages" in {s.name for s in spans["vizsearch-embedder"]}


def test_with_no_endpoint_nothing_is_instrumented_or_exported():
    """Off: no tracer provider, no exporter, no instrumentation loaded, no interceptor on any
    channel or door (redis and fastapi import the OpenTelemetry API themselves when it is
    installed; that is theirs, not a cost of ours)."""
    code = """
import sys
from opentelemetry import trace
from services.common import grpc_client, tracing
from services.embedder import triton
from services.gateway import http_api
from services.indexer import webhook, worker
assert not tracing.configure("gateway", "")
assert tracing.server_interceptors() == tracing.client_interceptors() == []
grpc_client.channel("127.0.0.1:1")
grpc_client.blocking_channel("127.0.0.1:1")
assert tracing.context_headers() is None
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.instrumentation", "opentelemetry.exporter")))
assert not loaded, loaded
"""
    env = {k: v for k, v in os.environ.items() if k != "VIZSEARCH_OTLP_ENDPOINT"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
