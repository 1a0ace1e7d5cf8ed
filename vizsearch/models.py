"""The HTTP API's request and response bodies: the public JSON contract, used
by the gateway (services/gateway/http_api.py) and by the Python client."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from vizsearch.names import check_dataset_name, check_key, check_text


# Milvus answers at most 16,384 hits past the first (limit + offset): the deepest a page can start.
RESULT_WINDOW = 16384
MAX_OFFSET = RESULT_WINDOW - 1
# The largest image side a size filter takes, in pixels: no image is this large.
MAX_SIDE = 1_000_000
# Map points returned by default (what a browser draws smoothly), and at most.
MAP_POINTS_SHOWN, MAX_MAP_POINTS = 20_000, 200_000
Box = Annotated[list[float], Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")]
# Every string a request carries is valid Unicode (JSON can spell lone surrogates; no backend takes them).
Text = Annotated[str, AfterValidator(check_text)]
DatasetName = Annotated[str, AfterValidator(check_dataset_name)]


class ImageSpec(BaseModel):
    """An image by reference (dataset and key) or by value (base64 data), optionally with a box."""

    dataset: DatasetName | None = None
    key: Text | None = None
    data: str | None = Field(None, description="the image file, base64-encoded")
    box: Box | None = None

    @model_validator(mode="after")
    def one_source(self):
        if (self.data is None) == (self.dataset is None or self.key is None):
            raise ValueError("give either data, or dataset and key")
        if self.key is not None:
            check_key(self.dataset, self.key)
        return self


class WeightedQuery(BaseModel):
    query: "Query"
    weight: float = 1.0


class Query(BaseModel):
    """Exactly one of text, image, object or all."""

    text: Text | None = None
    image: ImageSpec | None = None
    object: ImageSpec | None = None
    all: list[WeightedQuery] | None = None

    @model_validator(mode="after")
    def exactly_one(self):
        given = [name for name in ("text", "image", "object", "all") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of text, image, object, all (got {', '.join(given) or 'none'})")
        if self.object is not None and self.object.box is None:
            raise ValueError("an object query needs a box")
        return self


class SearchBody(BaseModel):
    query: Query
    datasets: list[Text] = []
    labels: list[Text] = Field([], description="objects with one of these labels (objects level)")
    sources: list[Literal["ground_truth", "prediction"]] = []
    min_box_area: float | None = Field(None, ge=0, description="pixels (objects level)")
    exclude_labels: list[Text] = Field(
        [], max_length=256, description="objects level: objects with none of these labels; images level: images "
        "with no box of these labels")
    all_labels: list[Text] = Field([], max_length=256,
                                   description='images with a box of every one of these labels ("a car and a dog")')
    key_prefix: Text = Field("", max_length=1024, description="keys that start with this: a folder of the dataset")
    min_width: int = Field(0, ge=0, le=MAX_SIDE, description="the image's upright width in pixels, at least (0: any)")
    max_width: int = Field(0, ge=0, le=MAX_SIDE, description="at most (0: any)")
    min_height: int = Field(0, ge=0, le=MAX_SIDE)
    max_height: int = Field(0, ge=0, le=MAX_SIDE)
    level: Literal["images", "objects"] | None = Field(None, description="default: objects for object queries")
    top_k: int = Field(20, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    min_score: float | None = Field(None, ge=-1, le=1)


class ExportBody(SearchBody):
    format: Literal["jsonl", "csv", "coco"] = Field(
        "jsonl", description="jsonl: a result per line; csv: a row per box; coco: the images and their boxes as COCO")


class EmbeddingsBody(BaseModel):
    texts: list[Text] | None = None
    images: list[ImageSpec] | None = None

    @model_validator(mode="after")
    def one_kind(self):
        if (self.texts is None) == (self.images is None):
            raise ValueError("give either texts or images")
        return self


class ModelInfo(BaseModel):
    model_id: str
    dimension: int
    version: str
    image_size: int
    max_text_tokens: int
    # gpu-fp16, cpu-onnx-int8, cpu-int8 or cpu-fp32, "-compiled" after it where the image
    # tower runs through torch.compile; empty from servers before it was reported
    runtime: str = ""
    jpeg_decode: str = ""  # triton (on its GPU) or embedder; empty from servers before it was reported


class ObjectResult(BaseModel):
    box: list[float]
    label: str
    source: str
    score: float
    detector_score: float | None = None


class SearchResult(BaseModel):
    dataset: str
    key: str
    score: float
    width: int
    height: int
    url: str
    objects: list[ObjectResult]


class SearchResponse(BaseModel):
    model: ModelInfo
    took_ms: float
    results: list[SearchResult]


class Embeddings(BaseModel):
    model: ModelInfo
    vectors: list[list[float]]


class Failure(BaseModel):
    key: str
    reason: str


class DuplicateSearch(BaseModel):
    """What a duplicates job compares: every image of datasets[0] with the images of all of them."""

    datasets: list[str]
    threshold: float = Field(description="cosine similarity from which two images are near duplicates")


class SuspectSearch(BaseModel):
    """How a suspect-labels job votes."""

    neighbours: int = Field(description="nearest annotated boxes that vote on each box's label")
    min_agreement: float = Field(description="share of the weighted votes another label needs to make a suspect")


class MapProjection(BaseModel):
    """What a map job projects: the dataset's entries of a level, all or a sample of max_points."""

    level: Literal["images", "objects"]
    max_points: int


class Job(BaseModel):
    id: str
    dataset: str
    kind: str
    state: str
    total: int
    done: int
    failed: int
    skipped: int
    objects: int
    annotation_errors: int
    failures: list[Failure]
    throughput: float
    eta_seconds: float
    error: str
    model_version: str
    created_at: datetime | None = None
    started_at: datetime | None = Field(None, description="when the first worker took part of it")
    finished_at: datetime | None = None
    duplicates: DuplicateSearch | None = Field(None, description="of a duplicates job: what it compares")
    suspects: SuspectSearch | None = Field(None, description="of a suspect-labels job: how it votes")
    map: MapProjection | None = Field(None, description="of a map job: what it projects")


class JobList(BaseModel):
    jobs: list[Job]


class Dataset(BaseModel):
    name: str
    images: int
    objects: int
    failed: int
    box_margin: float
    last_job: Job | None


class DatasetList(BaseModel):
    datasets: list[Dataset]


class DuplicatesBody(BaseModel):
    against: list[DatasetName] = Field(
        [], max_length=100, description="other datasets to compare the dataset's images with (a train/test leak)")
    threshold: float | None = Field(
        None, gt=0, le=1, description="cosine similarity from which two images are near duplicates; "
                                      "default: the indexer's VIZSEARCH_DUPLICATE_THRESHOLD")


class ImageRef(BaseModel):
    dataset: str
    key: str
    url: str


class DuplicateGroup(BaseModel):
    images: list[ImageRef] = Field(description="sorted by dataset, then key")
    min_similarity: float = Field(description="the lowest similarity by which an image joined the group (1: a copy)")
    max_similarity: float
    exact: bool = Field(description="every image has the same content (SHA-256)")


class SuspectsBody(BaseModel):
    neighbours: int | None = Field(None, ge=1, le=1000, description="default: the indexer's "
                                                                    "VIZSEARCH_SUSPECT_NEIGHBOURS")
    min_agreement: float | None = Field(None, gt=0, le=1, description="default: the indexer's "
                                                                      "VIZSEARCH_SUSPECT_MIN_AGREEMENT")


class SuspectNeighbour(BaseModel):
    key: str
    url: str
    box: Box
    label: str
    similarity: float


class SuspectLabel(BaseModel):
    dataset: str
    key: str
    url: str
    width: int = Field(description="its image's upright width in pixels")
    height: int
    box: Box
    label: str
    suggested_label: str = Field(description="the label its neighbours agree on")
    agreement: float = Field(description="the share of the neighbours' similarity-weighted votes for suggested_label")
    neighbours: list[SuspectNeighbour] = Field(description="those that voted for suggested_label, most similar first")


class Suspects(BaseModel):
    job: Job
    suspects: list[SuspectLabel] = Field(description="most certain first; none until the job ends")
    total_suspects: int


class MapBody(BaseModel):
    level: Literal["images", "objects"] = "images"
    max_points: int | None = Field(None, ge=2, description="default and most: the indexer's VIZSEARCH_MAP_MAX_POINTS")


class MapPoint(BaseModel):
    x: float = Field(description="0 to 1, left to right")
    y: float = Field(description="0 to 1, top to bottom")
    dataset: str
    key: str
    labels: list[str] = Field(description="an object's label; an image's boxes' distinct labels")
    box: Box | None = Field(None, description="an object's box")


class Map(BaseModel):
    job: Job
    points: list[MapPoint] = Field(description="a fixed random sample of the map's points when it has more than "
                                               "were asked for; none until the job ends")
    total_points: int


class Duplicates(BaseModel):
    job: Job
    groups: list[DuplicateGroup] = Field(description="largest first, then the most similar; none until the job ends")
    total_groups: int
    duplicate_images: int = Field(description="images that are in some group")


class Deleted(BaseModel):
    deleted_entries: int




class Problem(BaseModel):
    """An error, as RFC 9457 problem details (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = Field(description="what is wrong, naming the field or backend at fault")


class ThumbnailSpec(BaseModel):
    dataset: DatasetName
    key: Text
    box: Box | None = Field(None, description="only this region of the image (a crop)")


class ThumbnailsBody(BaseModel):
    images: list[ThumbnailSpec] = Field(min_length=1, max_length=100)
    size: int = Field(256, ge=16, le=1024, description="pixels on the longer side, at most")
    format: Literal["webp", "jpeg"] | None = Field(None, description="default: webp if the client accepts it")


class ThumbnailItem(BaseModel):
    """One image's thumbnail (base64), or why it has none."""

    content_type: str = ""
    data: str = ""
    etag: str = ""
    error: Problem | None = None


class Thumbnails(BaseModel):
    thumbnails: list[ThumbnailItem]


class FileSpec(BaseModel):
    key: Text
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class FilesCheckBody(BaseModel):
    files: list[FileSpec] = Field(min_length=1, max_length=10000)


class FilesCheck(BaseModel):
    upload: list[str] = Field(description="keys to send (new, or changed since uploaded)")
    unchanged: list[str] = Field(description="keys stored with these bytes already")


class UploadedFile(BaseModel):
    key: str
    size: int
    sha256: str
