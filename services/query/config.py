"""The query service's configuration (VIZSEARCH_* variables)."""

from typing import Literal

from pydantic import Field

from services.common.config import ServiceSettings
from services.common.vectors import VectorSettings


class QuerySettings(ServiceSettings, VectorSettings):
    grpc_port: int = 50053
    metrics_port: int = 9103
    embedder_url: str = Field("127.0.0.1:50054", description="host:port of the embedder.")
    embed_timeout_s: float = Field(10.0, description="Longest wait for the query's embedding, within the caller's deadline.")
    embedding_cache_size: int = Field(
        4096, ge=0, description="Query vectors kept (least recently used out), keyed by model version and the text "
        "or the image bytes and box: paging through a query embeds it once. 0: off."
    )
    search_ef: int = Field(
        256, ge=8, le=32768,
        description="HNSW search breadth (raised to top_k + offset when smaller): 256 finds 0.96 of the true top 10 "
                    "at 100k entries, 64 only 0.94 (make bench-query prints the curve). Also DISKANN's search list.")
    search_nprobe: int = Field(32, ge=1, le=65536, description="IVF_SQ8 clusters visited per search.")
    objects_overfetch: int = Field(
        4, ge=1, le=32, description="Object hits fetched per result image, so grouping by image still fills a page."
    )
    search_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Bounded", description="Milvus consistency of searches: Strong sees every write at once, Bounded is faster."
    )
    max_top_k: int = Field(1000, ge=1, description="Largest page.")
    object_box_margin: float = Field(
        0.1, ge=0, le=1, description="An object query's box grows by this fraction of its sides before it is cropped, "
        "as the indexer grows annotated boxes (its VIZSEARCH_BOX_MARGIN): a query by an indexed box finds it."
    )
    max_text_chars: int = Field(1000, ge=1, description="Longest query text.")
