"""The gateway's configuration (VIZSEARCH_* variables)."""

from pathlib import Path

from pydantic import Field

from services.common.config import ServiceSettings, StorageSettings


class GatewaySettings(ServiceSettings, StorageSettings):
    grpc_port: int = 50051
    http_port: int = Field(8080, description="Port of the HTTP API (FastAPI; OpenAPI docs at /docs).")
    metrics_port: int = 9101
    query_url: str = Field("127.0.0.1:50053", description="host:port of the query service.")
    indexer_url: str = Field("127.0.0.1:50052", description="host:port of the indexer.")
    embedder_url: str = Field("127.0.0.1:50054", description="host:port of the embedder.")
    redis_url: str = Field("redis://127.0.0.1:6380/0", description="Redis, for per-key rate limits.")
    backend_timeout_s: float = Field(30.0, description="Deadline of every call to a backend.")
    delete_timeout_s: float = Field(
        120.0, description="Deadline of a dataset deletion (it waits for the dataset's running batches to stop)."
    )
    auth_enabled: bool = Field(True, description="Require API keys; may be false only on a loopback address.")
    api_keys_file: Path | None = Field(
        None, description="JSON list of API keys, as hashes: [{name, sha256, role, datasets?}] (a mounted Secret)."
    )
    api_keys_reload_s: float = Field(
        5.0, gt=0, description="How often the keys file is checked for changes: a revoked key stops working "
        "within this (a mounted Secret is updated in place; no restart).")
    rate_limit_per_minute: int = Field(600, ge=0, description="Requests per key (or client, without auth); 0: no limit.")
    bulk_rate_limit_factor: int = Field(
        20, ge=1, description="Image fetches and file uploads count against a budget of their own, this many times "
        "a key's rate limit: a page of results or a folder's files is one action of many requests.")
    max_image_bytes: int = Field(20 * 1024 * 1024, description="Largest query image, uploaded or in base64.")
    max_upload_bytes: int = Field(
        2 * 2**30, description="Largest file uploaded through PUT /v1/datasets/{name}/files/{key} (annotation files "
        "can be large); it is spooled to disk (/tmp) past 8 MiB on its way to storage.")
    max_body_bytes: int = Field(
        28 * 1024 * 1024, description="Largest request body: one largest image in base64 (4/3 of its size) and the "
        "rest of the request. Larger bodies are refused (413) before they are read.",
    )
    max_text_chars: int = Field(1000, description="Longest query text.")
    max_image_pixels: int = Field(50_000_000, description="Largest image a thumbnail is rendered from (width x height).")
    max_decoded_bytes: int = Field(512 * 2**20, description="Most memory decoding one image for a thumbnail may take.")
    image_redirect: bool = Field(
        False, description="Answer GET /v1/images/... with a presigned storage URL instead of streaming the bytes."
    )
    storage_threads: int = Field(32, ge=1, description="Concurrent object-storage calls (image fetches).")
    thumbnail_memory_bytes: int = Field(
        64 * 2**20, ge=0, description="Thumbnails kept in memory, least recently used out (0: none).")
    thumbnail_memory_ttl_s: float = Field(
        60.0, ge=0, description="How long a thumbnail is served from memory without asking storage whether its image "
        "changed.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-Proto/-For headers are believed (comma-separated "
        "addresses, or * behind an ingress that is the only way in): result URLs then say https behind TLS. "
        "Empty: nobody's.",
    )
    presign_ttl_s: int = Field(300, ge=1, description="Lifetime of a presigned image URL.")
