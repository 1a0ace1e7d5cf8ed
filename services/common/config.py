"""Configuration: every service reads one pydantic-settings model from VIZSEARCH_* variables.

The knobs shared by all services live here; each service's config.py extends
ServiceSettings with its own. docs/services.md lists every variable.
"""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "VIZSEARCH_"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = Field("127.0.0.1", description="Address the service listens on (0.0.0.0 in a pod).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field("json", description="json: one JSON object per line.")
    metrics_port: int = Field(description="Port of the Prometheus /metrics endpoint; 0 disables it.")
    grpc_port: int = Field(description="Port of the service's gRPC server.")
    shutdown_grace_s: float = Field(10.0, description="Seconds in-flight calls get to finish on SIGTERM.")
    internal_token: str = Field(
        "", description="A token every internal gRPC call carries (x-vizsearch-internal-token) and every service "
        "but the gateway's public door requires: a second wall behind the network policies. Empty: none.",
    )
    health_probe_interval_s: float = Field(
        5.0, gt=0, description="How often the service checks its backends; its gRPC health says SERVING only while "
        "all answer.",
    )
    otlp_endpoint: str = Field(
        "", description="An OTLP/HTTP collector (say http://otel-collector:4318) to send OpenTelemetry traces to; "
        "empty: no tracing, at no cost (needs the `tracing` extra).",
    )
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="The share of new traces recorded; a call that arrives traced follows its caller.",
    )


class StorageSettings(BaseSettings):
    """Object storage (MinIO, or any S3 API): where datasets are dropped."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    s3_endpoint: str = Field("127.0.0.1:9000", description="host:port of the S3 API.")
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = Field(False, description="Use HTTPS towards the S3 API.")
    s3_region: str = "us-east-1"
    s3_timeout_s: float = Field(30.0, gt=0, description="Deadline to connect to, and to read from, the S3 API.")
    s3_retries: int = Field(
        2, ge=0, description="Retries of a call the S3 API answered with a 5xx or could not be reached for.")
    bucket: str = Field("vizsearch", description="Bucket whose top-level prefixes are datasets.")
