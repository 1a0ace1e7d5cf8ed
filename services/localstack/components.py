"""What the local stack runs: for each component, its command, environment and health check."""

import os
import shutil
import sys
import sysconfig
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.localstack.config import REPO, StackSettings

TRITON_MODELS = ("clip_image", "clip_jpeg", "clip_text", "clip_metadata")


@dataclass
class Component:
    name: str
    command: list[str]
    endpoints: dict[str, str]
    healthy: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] = lambda: None  # before start
    provision: Callable[[], None] = lambda: None  # once healthy (idempotent)


def _http_ok(url: str, needle: str = "") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and needle in response.read().decode(errors="replace")
    except OSError:
        return False


def grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _redis_up(port: int) -> bool:
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
    except redis.RedisError:
        return False


def _create_bucket(port: int) -> None:
    from services.common.config import StorageSettings
    from services.common.storage import ObjectStore

    ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{port}")).ensure_bucket()


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _pytriton_dir() -> Path:
    import pytriton

    return Path(pytriton.__file__).parent / "tritonserver"


def _prepare_triton_backends(backends: Path) -> None:
    """Triton's python backend runs a stub that must sit beside libtriton_python.so;
    the bundled one matching this Python is copied into the run directory."""
    source = _pytriton_dir()
    target = backends / "python"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "backends" / "python", target)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copy2(source / "python_backend_stubs" / version / "triton_python_backend_stub", target)


def _triton_env(settings: StackSettings) -> dict[str, str]:
    # The stub runs the first python3 on PATH (the venv's, which has torch and
    # transformers) and must load this interpreter's libpython.
    libdirs = [sysconfig.get_config_var("LIBDIR"), str(_pytriton_dir().parent.parent / "nvidia_pytriton.libs")]
    return {
        "PATH": f"{_venv_bin()}:{os.environ.get('PATH', '')}",
        "LD_LIBRARY_PATH": ":".join(filter(None, [*libdirs, os.environ.get("LD_LIBRARY_PATH", "")])),
        "VIZSEARCH_MODEL_DIR": str(settings.model_dir),
        "VIZSEARCH_MODEL": settings.model_slug if settings.model_is_local else settings.model,
        "OMP_NUM_THREADS": str(os.cpu_count() or 1),
        "VIZSEARCH_CPU_RUNTIME": settings.cpu_runtime,
        "VIZSEARCH_ONNX_CACHE": str(settings.run_dir / "onnx"),
        # Waiting threads sleep instead of spinning: the services beside Triton share its cores.
        "OMP_WAIT_POLICY": "PASSIVE",
        "VIZSEARCH_JPEG_DECODE": settings.jpeg_decode,
        "VIZSEARCH_TORCH_COMPILE": str(settings.torch_compile).lower(),
    }


def _indexer_env(s: StackSettings) -> dict[str, str]:
    """What the indexer and its workers share: every backend's address."""
    return {
        "VIZSEARCH_EMBEDDER_URL": f"127.0.0.1:{s.embedder_port}",
        "VIZSEARCH_REDIS_URL": f"redis://127.0.0.1:{s.redis_port}/0",
        "VIZSEARCH_MILVUS_URI": f"http://127.0.0.1:{s.milvus_port}",
        "VIZSEARCH_S3_ENDPOINT": f"127.0.0.1:{s.storage_port}",
        "VIZSEARCH_TASK_VISIBILITY_TIMEOUT_S": str(s.task_visibility_timeout_s),
        "VIZSEARCH_TASK_LEASE_S": str(s.task_lease_s),
        "VIZSEARCH_TASK_LOST_AFTER_S": str(2 * s.sweep_interval_s),
        "VIZSEARCH_SWEEP_INTERVAL_S": str(s.sweep_interval_s),
        "VIZSEARCH_RECONCILE_SETTLE_S": str(s.reconcile_settle_s),
        "VIZSEARCH_WEBHOOK_TOKEN": s.webhook_token,
        "VIZSEARCH_BATCH_SIZE": str(s.ingest_batch_size),
    }


def _service_env(s: StackSettings) -> dict[str, str]:
    """What every vizsearch service of the stack gets."""
    return {"VIZSEARCH_HEALTH_PROBE_INTERVAL_S": str(s.health_probe_interval_s),
            **({"VIZSEARCH_OTLP_ENDPOINT": s.otlp_endpoint} if s.otlp_endpoint else {})}


def triton_trace_args(otlp_endpoint: str) -> list[str]:
    """Triton's OpenTelemetry tracing: only requests that arrive with a trace context (rate=0),
    so Triton's spans join the embedder's traces and nothing else is traced."""
    if not otlp_endpoint:
        return []
    return ["--trace-config", "mode=opentelemetry", "--trace-config", "rate=0", "--trace-config", "count=-1",
            "--trace-config", "level=TIMESTAMPS",
            "--trace-config", f"opentelemetry,url={otlp_endpoint.rstrip('/')}/v1/traces",
            "--trace-config", "opentelemetry,resource=service.name=vizsearch-triton"]


def worker_component(s: StackSettings, name: str = "worker", metrics_port: int | None = None) -> Component:
    """A Celery worker; tests start more of these beside the stack's own."""
    return Component(
        name,
        [sys.executable, "-m", "services.indexer.worker"],
        {},
        lambda: True,  # a worker serves nothing: running is all there is to check
        env={**_indexer_env(s), **_service_env(s), "VIZSEARCH_METRICS_PORT": str(metrics_port or s.worker_metrics_port)},
    )


def components(settings: StackSettings) -> list[Component]:
    """The stack in start order; each depends only on those before it."""
    run, python = settings.run_dir, sys.executable
    backends = run / "triton" / "backends"
    s = settings
    service = _service_env(s)
    return [
        Component(
            "redis",
            # An append-only file keeps the manifests and jobs across restarts, as Milvus keeps
            # the vectors: without it every `make up` would embed every dataset again.
            ["redis-server", "--bind", "127.0.0.1", "--port", str(s.redis_port), "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--dir", str(run / "redis")],
            {"redis": f"redis://127.0.0.1:{s.redis_port}/0"},
            lambda: _redis_up(s.redis_port),
            prepare=lambda: (run / "redis").mkdir(parents=True, exist_ok=True),
        ),
        Component(
            "storage",
            [python, "-m", "services.localstack.storage_server", "--host", "127.0.0.1", "--port", str(s.storage_port),
             str(run / "storage")],
            {"s3": f"http://127.0.0.1:{s.storage_port}"},
            lambda: _http_ok(f"http://127.0.0.1:{s.storage_port}/"),
            prepare=lambda: (run / "storage").mkdir(parents=True, exist_ok=True),
            provision=lambda: _create_bucket(s.storage_port),
        ),
        Component(
            "milvus",
            [python, "-m", "services.localstack.milvus_server", "--data", str(run / "milvus"),
             "--port", str(s.milvus_port), "--metrics-port", str(s.milvus_metrics_port),
             "--time-tick-ms", str(s.milvus_time_tick_ms)],
            {"milvus": f"http://127.0.0.1:{s.milvus_port}"},
            lambda: _http_ok(f"http://127.0.0.1:{s.milvus_metrics_port}/healthz", "OK"),
        ),
        Component(
            "triton",
            [str(_pytriton_dir() / "bin" / "tritonserver"), f"--model-repository={REPO / 'deploy' / 'triton-models'}",
             f"--backend-directory={backends}", "--allow-gpu-metrics=false", "--pinned-memory-pool-byte-size=0",
             "--http-address=127.0.0.1", f"--http-port={s.triton_http_port}",
             "--grpc-address=127.0.0.1", f"--grpc-port={s.triton_grpc_port}",
             "--metrics-address=127.0.0.1", f"--metrics-port={s.triton_metrics_port}",
             *triton_trace_args(s.otlp_endpoint)],
            {"triton-http": f"http://127.0.0.1:{s.triton_http_port}", "triton-grpc": f"127.0.0.1:{s.triton_grpc_port}"},
            # Server readiness is not enough: each model must be loaded.
            lambda: all(_http_ok(f"http://127.0.0.1:{s.triton_http_port}/v2/models/{m}/ready") for m in TRITON_MODELS),
            env=_triton_env(s),
            prepare=lambda: _prepare_triton_backends(backends),
        ),
        Component(
            "embedder",
            [python, "-m", "services.embedder"],
            {"embedder": f"127.0.0.1:{s.embedder_port}", "embedder-metrics": f"http://127.0.0.1:{s.embedder_metrics_port}/metrics"},
            lambda: grpc_serving(f"127.0.0.1:{s.embedder_port}"),
            env={
                **service,
                "VIZSEARCH_GRPC_PORT": str(s.embedder_port),
                "VIZSEARCH_METRICS_PORT": str(s.embedder_metrics_port),
                "VIZSEARCH_TRITON_URL": f"127.0.0.1:{s.triton_grpc_port}",
                "VIZSEARCH_S3_ENDPOINT": f"127.0.0.1:{s.storage_port}",
            },
        ),
        Component(
            "indexer",
            [python, "-m", "services.indexer"],
            {"indexer": f"127.0.0.1:{s.indexer_port}", "webhook": f"http://127.0.0.1:{s.webhook_port}/v1/minio/events"},
            lambda: grpc_serving(f"127.0.0.1:{s.indexer_port}"),
            env={
                **_indexer_env(s),
                **service,
                "VIZSEARCH_GRPC_PORT": str(s.indexer_port),
                "VIZSEARCH_METRICS_PORT": str(s.indexer_metrics_port),
                "VIZSEARCH_WEBHOOK_PORT": str(s.webhook_port),
                "VIZSEARCH_RECONCILE_INTERVAL_S": str(s.reconcile_interval_s),
            },
        ),
        worker_component(s),
        Component(
            "query",
            [python, "-m", "services.query"],
            {"query": f"127.0.0.1:{s.query_port}"},
            lambda: grpc_serving(f"127.0.0.1:{s.query_port}"),
            env={
                **service,
                "VIZSEARCH_GRPC_PORT": str(s.query_port),
                "VIZSEARCH_METRICS_PORT": str(s.query_metrics_port),
                "VIZSEARCH_EMBEDDER_URL": f"127.0.0.1:{s.embedder_port}",
                "VIZSEARCH_MILVUS_URI": f"http://127.0.0.1:{s.milvus_port}",
                "VIZSEARCH_SEARCH_CONSISTENCY": s.search_consistency,
            },
        ),
        Component(
            "gateway",
            [python, "-m", "services.gateway"],
            {"gateway-http": f"http://127.0.0.1:{s.gateway_http_port}", "gateway-grpc": f"127.0.0.1:{s.gateway_grpc_port}"},
            lambda: grpc_serving(f"127.0.0.1:{s.gateway_grpc_port}"),
            env={
                **service,
                "VIZSEARCH_GRPC_PORT": str(s.gateway_grpc_port),
                "VIZSEARCH_HTTP_PORT": str(s.gateway_http_port),
                "VIZSEARCH_METRICS_PORT": str(s.gateway_metrics_port),
                "VIZSEARCH_QUERY_URL": f"127.0.0.1:{s.query_port}",
                "VIZSEARCH_INDEXER_URL": f"127.0.0.1:{s.indexer_port}",
                "VIZSEARCH_EMBEDDER_URL": f"127.0.0.1:{s.embedder_port}",
                "VIZSEARCH_REDIS_URL": f"redis://127.0.0.1:{s.redis_port}/0",
                "VIZSEARCH_S3_ENDPOINT": f"127.0.0.1:{s.storage_port}",
                "VIZSEARCH_AUTH_ENABLED": str(s.api_keys_file is not None).lower(),
                "VIZSEARCH_RATE_LIMIT_PER_MINUTE": str(s.rate_limit_per_minute),
                **({"VIZSEARCH_API_KEYS_FILE": str(s.api_keys_file)} if s.api_keys_file else {}),
            },
        ),
    ]
