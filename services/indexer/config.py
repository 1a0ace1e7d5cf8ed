"""The indexer's and its workers' configuration (VIZSEARCH_* variables)."""

import os

from pydantic import Field

from services.common.config import ServiceSettings, StorageSettings
from services.common.vectors import VectorSettings


class IndexerSettings(ServiceSettings, StorageSettings, VectorSettings):
    grpc_port: int = 50052
    metrics_port: int = 9102
    webhook_port: int = Field(8082, description="Port of the HTTP endpoint that receives MinIO bucket notifications.")
    webhook_token: str = Field(
        "", description="Shared token MinIO must send (Authorization: Bearer); empty refuses every event."
    )
    embedder_url: str = Field("127.0.0.1:50054", description="host:port of the embedder.")
    embed_timeout_s: float = Field(300.0, description="Deadline of one embedding call from a worker.")
    redis_url: str = Field("redis://127.0.0.1:6380/0", description="Redis: the Celery broker and the job records.")
    redis_timeout_s: float = Field(10.0, gt=0, description="Deadline of one Redis call (a stalled Redis is retried).")
    redis_wait_s: float = Field(
        600.0, ge=0, description="How long a worker waits for Redis to come back mid-task before it leaves the "
        "unit to the sweeper.",
    )
    reconcile_interval_s: float = Field(
        60.0, ge=0, description="Seconds between listings of every dataset's prefix; 0 turns the reconciler off."
    )
    reconcile_settle_s: float = Field(
        30.0, ge=0,
        description="The reconciler leaves a dataset alone until its newest object is this old (an upload in progress "
        "becomes one job, not several); past ten times this it scans anyway.",
    )
    batch_size: int = Field(64, ge=1, le=1024, description="Images per worker task (and per embedding call).")
    download_threads: int = Field(16, ge=1, description="Concurrent object downloads within one task.")
    worker_concurrency: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1), ge=1, description="Tasks one worker process runs at once."
    )
    task_lease_s: float = Field(
        30.0, ge=1, description="A worker's lease on the unit it runs, renewed every third of it: a dead worker's "
        "unit is sent again about this long after it died.",
    )
    task_lost_after_s: float = Field(
        10.0, ge=0, description="A unit in flight that is neither queued nor leased for this long is sent again.",
    )
    sweep_interval_s: float = Field(
        5.0, gt=0, description="How often the indexer looks for lost units and stalled jobs (and dispatches).",
    )
    job_stalled_after_s: float = Field(
        60.0, gt=0, description="An unfinished job with no unit left and no progress for this long fails, freeing "
        "its dataset for the next reconcile.",
    )
    task_visibility_timeout_s: int = Field(
        900, ge=5,
        description="The broker's own redelivery of a dead worker's message (a backstop: the sweeper sends the unit "
        "again after a lease; the late copy finds it done).",
    )
    task_max_retries: int = Field(8, ge=0, description="Retries of a task on transient errors, with backoff.")
    task_retry_backoff_max_s: int = Field(120, ge=1, description="Longest wait between two retries.")
    box_margin: float = Field(
        0.1, ge=0, le=1, description="Default context margin around an object box, as a fraction of the box's side."
    )
    max_image_bytes: int = Field(
        20 * 1024 * 1024, description="Larger images are recorded as failed (keep it within the embedder's limit)."
    )
    thumbnail_size: int = Field(
        256, ge=0, le=1024, description="Side of the thumbnail the workers render for the web app's grid as they index "
        "an image (kept in the bucket under .thumbnails/); 0: none (the gateway renders them when asked).",
    )
    max_image_pixels: int = Field(50_000_000, description="Largest image a thumbnail is rendered from.")
    max_decoded_bytes: int = Field(512 * 2**20, description="Most memory decoding one image for a thumbnail may take.")
    max_annotation_bytes: int = Field(1024 * 1024 * 1024, description="Largest annotation file read.")
    job_history: int = Field(1000, ge=1, description="Jobs kept per dataset; older ones are forgotten.")
    duplicate_threshold: float = Field(
        0.85, gt=0, le=1, description="Cosine similarity from which two images are near duplicates, unless a "
        "duplicates job names its own (docs/insights.md gives the precision and recall it was chosen by).",
    )
    duplicate_neighbours: int = Field(
        16, ge=1, le=1024, description="Nearest images a duplicates job looks at per image (exact copies are found "
        "by content hash, however many): a larger group is still found whole through its members' neighbours.",
    )
    suspect_neighbours: int = Field(
        10, ge=1, le=1024, description="Nearest annotated boxes that vote on a box's label in a suspect-labels job, "
        "unless the job names its own.",
    )
    suspect_min_agreement: float = Field(
        0.5, gt=0, le=1, description="Share of the similarity-weighted votes another label needs (beside more than "
        "the box's own) to make a box a suspect, unless the job names its own.",
    )
    analysis_search_ef: int = Field(
        128, ge=1, le=4096, description="HNSW candidate list of the searches of duplicates and suspect-labels jobs "
        "(at least the neighbours they look at).",
    )
    analysis_batch_size: int = Field(
        256, ge=1, le=4096, description="Entries per task of a duplicates or suspect-labels job: one batched search "
        "each.",
    )
    map_max_points: int = Field(
        200_000, ge=100, le=2_000_000, description="Most points a map job projects; a larger dataset is mapped "
        "from a uniform random sample of this many (UMAP holds them all in memory: about 1 KB each).",
    )
