"""The embedder's configuration (VIZSEARCH_* variables)."""

import os

from pydantic import Field

from services.common.config import ServiceSettings, StorageSettings


class EmbedderSettings(ServiceSettings, StorageSettings):
    grpc_port: int = 50054
    metrics_port: int = 9104
    triton_url: str = Field("127.0.0.1:8001", description="host:port of Triton's gRPC endpoint.")
    triton_image_model: str = "clip_image"
    triton_text_model: str = "clip_text"
    triton_metadata_model: str = "clip_metadata"
    triton_jpeg_model: str = Field(
        "clip_jpeg", description="Triton's model that decodes and embeds JPEGs on its device, used for upright RGB "
        "JPEGs when clip_metadata says jpeg_decode is \"triton\" (Triton has a GPU).")
    triton_timeout_s: float = Field(120.0, description="Longest wait for one Triton call, within the caller's deadline.")
    preprocess_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 2, description="Threads that fetch, decode and resize images."
    )
    max_batch_items: int = Field(1024, description="Most texts or images in one call.")
    max_text_chars: int = Field(2000, description="Longest text accepted (it is truncated to 77 tokens anyway).")
    max_image_bytes: int = Field(20 * 1024 * 1024, description="Largest encoded image accepted.")
    max_image_pixels: int = Field(50_000_000, description="Largest decoded image (width x height): bomb guard.")
    max_decoded_bytes: int = Field(
        512 * 2**20, description="Most memory decoding one image may take (its pixels in their own mode, then RGB), "
        "judged from its header: a 16-bit or many-channel image counts for what it costs.",
    )
    decode_budget_bytes: int = Field(
        1024 * 2**20, description="Most memory all decoding threads hold at once; a decode waits for room, so a call "
        "of many large images queues instead of growing the process.",
    )
