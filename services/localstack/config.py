"""The local stack's settings: ports and places, each overridable by VIZSEARCH_* variables."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.config import ENV_PREFIX

REPO = Path(__file__).resolve().parents[2]
# The small CLIP trained on the demo street scenes (model/train_demo.py), committed.
DEMO_MODEL = REPO / "models" / "vizsearch-demo-clip"
Port = Annotated[int, Field(ge=1, le=65535)]


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    run_dir: Path = Field(REPO / ".run", description="Logs, PIDs and every server's data.")
    model: str = Field(
        str(DEMO_MODEL),
        description="CLIP checkpoint to serve: a directory, a Hugging Face hub id (fetched once into the run "
        "directory) or s3://bucket/prefix; default: the demo model trained on the generated street scenes.",
    )
    redis_port: Port = 6380
    storage_port: Port = 9000
    milvus_port: Port = 19530
    milvus_metrics_port: Port = 9091
    triton_http_port: Port = 8000
    triton_grpc_port: Port = 8001
    triton_metrics_port: Port = 8002
    embedder_port: Port = 50054
    embedder_metrics_port: Port = 9104
    query_port: Port = 50053
    query_metrics_port: Port = 9103
    gateway_grpc_port: Port = 50051
    gateway_http_port: Port = 8080
    gateway_metrics_port: Port = 9101
    search_consistency: str = Field(
        "Strong", description="Milvus consistency of the local query service: Strong finds what was just indexed."
    )
    milvus_time_tick_ms: int = Field(
        20, ge=1, description="Milvus's proxy.timeTickInterval: a Strong read waits for the next tick (Milvus's "
        "default of 200 ms puts 200 ms on every query; 20 costs about 6% of a CPU when idle)."
    )
    rate_limit_per_minute: int = Field(600, description="The local gateway's requests per key (or client) per minute.")
    cpu_runtime: Literal["fp32", "int8", "onnx-int8"] = Field(
        "onnx-int8", description="What Triton's CPU instances run: onnx-int8 (the image tower in ONNX Runtime with "
        "int8 MatMuls, the fastest), int8 (every Linear layer dynamically quantised) or fp32 (torch, the reference; "
        "docs/benchmarks.md, \"CPU runtimes\").")
    jpeg_decode: Literal["auto", "triton", "embedder"] = Field(
        "auto", description="Who decodes JPEGs: auto is Triton's clip_jpeg where Triton has a GPU, else the "
        "embedder; triton makes the CPU Triton do it (the GPU path's code, on the CPU).")
    torch_compile: bool = Field(
        False, description="Whether Triton runs the image tower through torch.compile where it runs in torch "
        "unquantised (here: with cpu_runtime fp32); compiles at load (docs/model.md, \"Compiling the image tower\").")
    api_keys_file: Path | None = Field(
        None, description="API keys (as hashes) for the local gateway; unset: authentication off (loopback only)."
    )
    indexer_port: Port = 50052
    indexer_metrics_port: Port = 9102
    webhook_port: Port = 8082
    worker_metrics_port: Port = 9105
    reconcile_interval_s: float = Field(5.0, description="How often the local indexer lists the bucket for new files.")
    reconcile_settle_s: float = Field(3.0, description="How long a drop must be quiet before the reconciler takes it.")
    task_visibility_timeout_s: int = Field(900, description="The broker's redelivery of a dead worker's message (a backstop).")
    task_lease_s: float = Field(30.0, description="A worker's lease on its unit: a dead worker's unit is sent again "
                                "about this long after it died.")
    sweep_interval_s: float = Field(5.0, description="How often the local indexer looks for lost work.")
    health_probe_interval_s: float = Field(5.0, description="How often each service checks its backends.")
    otlp_endpoint: str = Field("", description="An OTLP/HTTP collector every service and Triton send traces to; "
                               "empty: no tracing.")
    ingest_batch_size: int = Field(64, description="Images per ingestion task.")
    webhook_token: str = Field("local-webhook-token", description="Token the local indexer's webhook expects.")
    start_timeout_s: float = Field(300.0, description="Longest wait for one component to become healthy.")
    stop_grace_s: float = Field(10.0, description="Seconds a component gets to exit on SIGTERM before SIGKILL.")

    @classmethod
    def shifted_ports(cls, shift: int) -> dict[str, int]:
        """Every port at its default + shift: a second stack beside a running one."""
        return {name: info.default + shift for name, info in cls.model_fields.items() if name.endswith("_port")}

    @property
    def model_is_local(self) -> bool:
        return self.model.startswith(("/", "."))

    @property
    def model_dir(self) -> Path:
        return Path(self.model) if self.model_is_local else self.run_dir / "models" / self.model_slug

    @property
    def model_slug(self) -> str:
        """The model's name: a directory's own name, or the hub id or URL made a file name."""
        if self.model_is_local:
            return Path(self.model).name
        return self.model.replace("://", "--").replace("/", "--").replace(":", "")
