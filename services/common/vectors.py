"""The vector index in Milvus: what the indexer writes and the query service reads.

Each (model version, level) has its own collection, `vizsearch_<level>_<version>_r<schema revision>`,
reached through the alias `vizsearch_<level>`: a new model fills new
collections in the background and the alias moves once they are complete.
The dataset is the partition key, so a dataset's entries are searched and
deleted without touching the others.

Works with Milvus 2.3.5 (the local stack), current Milvus and milvus-lite: only
features all of them have are used, and one known 2.3 bug is stepped around
(see `VectorStore.write`).
"""

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymilvus import AsyncMilvusClient, DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from services.common.config import ENV_PREFIX
from services.common.wire import GROUND_TRUTH
from vizsearch.models import RESULT_WINDOW

logger = logging.getLogger(__name__)

LEVELS = ("images", "objects")
# Part of every collection's name: a schema change gets new collections, filled by the
# next scans, instead of writes failing against old ones.
SCHEMA_REVISION = 4
MAX_KEY_CHARS = 1024
MAX_LABEL_CHARS = 256
# Distinct labels kept per image (the `labels` array every entry carries, for the
# all_labels and images-level exclude_labels filters); Milvus arrays hold at most 4,096.
MAX_IMAGE_LABELS = 1024
# Milvus's longest VARCHAR: an image's boxes, as JSON, must fit (else readers look them up).
MAX_BOXES_BYTES = 65535
# Milvus's error code for a collection that does not exist (2.3 and later).
COLLECTION_NOT_FOUND = 100
# Milvus before 2.3.10 computes an upsert's partition from the wrong field when
# the collection has a partition key (milvus-io/milvus#30607, fixed by #30772):
# upserted rows become invisible to filters on the dataset.
_UPSERT_WITH_PARTITION_KEY_FIXED = (2, 3, 10)


class VectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    milvus_uri: str = Field("http://127.0.0.1:19530", description="Milvus endpoint (or a milvus-lite file path).")
    milvus_token: str = Field("", description="Milvus token (user:password or an API key); empty without auth.")
    milvus_timeout_s: float = Field(30.0, description="Deadline of one Milvus call.")
    vector_index: Literal["HNSW", "HNSW_SQ", "IVF_SQ8", "DISKANN"] = Field(
        "HNSW", description="Index type of new collections: HNSW (in memory, best recall per millisecond), HNSW_SQ "
                            "(HNSW over 8-bit vectors, about a third of HNSW's memory; Milvus 2.5 or later), IVF_SQ8 "
                            "(clusters of 8-bit vectors: least memory, slower at high recall), DISKANN (graph and "
                            "vectors on NVMe, compressed codes in memory). docs/scale.md compares them.")
    hnsw_m: int = Field(16, ge=4, le=64, description="HNSW and HNSW_SQ graph degree: recall and memory grow with it.")
    hnsw_ef_construction: int = Field(200, ge=8, le=512, description="HNSW and HNSW_SQ build-time candidate list.")
    ivf_nlist: int = Field(1024, ge=1, le=65536, description="IVF_SQ8 clusters per segment.")
    milvus_replicas: int = Field(
        1, ge=1, le=16, description="In-memory replicas a collection is loaded as: more survive a query node's loss "
                                    "and serve more searches, each on query nodes of its own (docs/scale.md).")
    collection_prefix: str = Field(
        "vizsearch", description="Collections and aliases are named <prefix>_<level>[_<version>_r<revision>]."
    )


@dataclass(frozen=True)
class Entry:
    """One indexed vector: a whole image (no box) or one annotated object in it."""

    dataset: str
    key: str
    vector: Sequence[float]
    width: int
    height: int
    sha256: str
    indexed_at: int  # epoch milliseconds
    box: tuple[float, float, float, float] | None = None
    label: str = ""
    source: str = ""  # "ground_truth" | "prediction" for objects
    score: float = 0.0
    objects: int = 0  # of an image entry: how many object entries its image has
    boxes: str = ""  # of an image entry: its objects, from encode_boxes ("" if none or too many)
    labels: tuple[str, ...] = ()  # the labels of the image's objects, on its image and object entries

    def entry_id(self, model_version: str) -> str:
        return entry_id(model_version, self.dataset, self.key, self.box, self.label, self.source)

    def row(self, model_version: str) -> dict:
        x1, y1, x2, y2 = self.box or (0.0, 0.0, float(self.width), float(self.height))
        return {
            "id": self.entry_id(model_version),
            "vector": list(self.vector),
            "dataset": self.dataset,
            "key": self.key,
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "label": self.label[:MAX_LABEL_CHARS],
            "source": self.source,
            "score": float(self.score),
            "box_x1": float(x1),
            "box_y1": float(y1),
            "box_x2": float(x2),
            "box_y2": float(y2),
            "box_area": float((x2 - x1) * (y2 - y1)),
            "indexed_at": self.indexed_at,
            "objects": self.objects,
            "boxes": self.boxes,
            "labels": sorted({label[:MAX_LABEL_CHARS] for label in self.labels})[:MAX_IMAGE_LABELS],
        }


def encode_boxes(objects: Iterable[Entry]) -> str:
    """An image's object entries as compact JSON rows [x1, y1, x2, y2, label, source, score],
    top to bottom; "" when they do not fit one VARCHAR (readers then query the objects)."""
    rows = sorted(([*o.box, o.label[:MAX_LABEL_CHARS], o.source, o.score] for o in objects),
                  key=lambda r: (r[1], r[0]))
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False) if rows else ""
    return text if len(text.encode()) <= MAX_BOXES_BYTES else ""


def decode_boxes(text: str) -> list[dict]:
    """encode_boxes' rows as dicts with the objects collection's field names."""
    return [{"box_x1": x1, "box_y1": y1, "box_x2": x2, "box_y2": y2, "label": label, "source": source,
             "score": score} for x1, y1, x2, y2, label, source, score in json.loads(text)] if text else []


def entry_id(model_version: str, dataset: str, key: str, box=None, label: str = "", source: str = "") -> str:
    """Deterministic: the same image or object under the same model always gets the same id,
    so a redelivered task overwrites instead of duplicating."""
    box_text = "" if box is None else ",".join(f"{v:.2f}" for v in box)
    identity = "\x00".join([model_version, dataset, key, box_text, label, source])
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def is_missing_collection(error: Exception) -> bool:
    """The error says the collection does not exist (nothing indexed under that model yet)."""
    return isinstance(error, MilvusException) and error.code == COLLECTION_NOT_FOUND


# -- expressions: every Milvus filter is built here; user strings pass through quote(),
# numbers through float(), so nothing a user sends is pasted into an expression.
def quote(value: str) -> str:
    """A Milvus expression string literal."""
    return json.dumps(value, ensure_ascii=False)


def quote_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(quote(v) for v in values) + "]"


@dataclass(frozen=True)
class SearchFilter:
    """What a search keeps. labels, exclude_labels (at the objects level), sources and
    min_box_area test object entries; the rest any entry (all_labels and images-level
    exclusion through the `labels` array of its image)."""

    datasets: Sequence[str] = ()
    labels: Sequence[str] = ()
    exclude_labels: Sequence[str] = ()
    all_labels: Sequence[str] = ()
    sources: Sequence[str] = ()
    min_box_area: float | None = None
    key_prefix: str = ""
    min_width: int = 0
    max_width: int = 0
    min_height: int = 0
    max_height: int = 0

    def expression(self, level: str) -> str:
        """The Milvus filter of this search at `level` ("images" or "objects"); '' for none."""
        parts = []
        if self.datasets:
            parts.append(f"dataset in {quote_list(self.datasets)}")
        if self.key_prefix:
            parts.append(_prefix(self.key_prefix))
        for field, bound, operator in (("width", self.min_width, ">="), ("width", self.max_width, "<="),
                                       ("height", self.min_height, ">="), ("height", self.max_height, "<=")):
            if bound:
                parts.append(f"{field} {operator} {int(bound)}")
        if self.all_labels:
            parts.append(f"array_contains_all(labels, {quote_list(sorted(set(self.all_labels)))})")
        if self.exclude_labels:
            excluded = quote_list(sorted(set(self.exclude_labels)))
            parts.append(f"label not in {excluded}" if level == "objects" else
                         f"not array_contains_any(labels, {excluded})")
        if self.labels:
            parts.append(f"label in {quote_list(self.labels)}")
        if self.sources:
            parts.append(f"source in {quote_list(sorted(set(self.sources)))}")
        if self.min_box_area is not None:
            parts.append(f"box_area >= {float(self.min_box_area)!r}")
        return " and ".join(parts)


def _prefix(prefix: str) -> str:
    """Keys starting with `prefix`, as a range (LIKE would read % and _ in it as wildcards):
    from the prefix to the prefix with its last character's successor."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return f"key >= {quote(prefix)}"
    successor = chr(last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000)
    return f"key >= {quote(prefix)} and key < {quote(prefix[:-1] + successor)}"


def _scope(datasets: Sequence[str], annotated_only: bool) -> str:
    """Entries of these datasets; with annotated_only, only ground-truth boxes."""
    expression = f"dataset in {quote_list(datasets)}"
    return f"{expression} and source == {quote(GROUND_TRUTH)}" if annotated_only else expression


def box_near(dataset: str, key: str, box: Sequence[float], tolerance: float = 0.01) -> str:
    """The object entries of one image whose box corners are within `tolerance` pixels of `box`."""
    near = " and ".join(f"{field} >= {float(value) - tolerance!r} and {field} <= {float(value) + tolerance!r}"
                        for field, value in zip(("box_x1", "box_y1", "box_x2", "box_y2"), box))
    return f"dataset == {quote(dataset)} and key == {quote(key)} and {near}"


def of_images(keys_by_dataset: dict[str, Sequence[str]]) -> str:
    """The entries of these images, given as {dataset: keys}."""
    return " or ".join(f"(dataset == {quote(d)} and key in {quote_list(keys)})" for d, keys in keys_by_dataset.items())


def _version_tuple(text: str) -> tuple[int, ...]:
    """'v2.3.5-lite' -> (2, 3, 5)."""
    return tuple(int(n) for n in re.findall(r"\d+", text.split("-", 1)[0])[:3])


def index_build_params(settings: VectorSettings) -> dict:
    """The build parameters of VIZSEARCH_VECTOR_INDEX (DISKANN takes Milvus's own defaults)."""
    if settings.vector_index in ("HNSW", "HNSW_SQ"):
        graph = {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction}
        return graph | {"sq_type": "SQ8"} if settings.vector_index == "HNSW_SQ" else graph
    if settings.vector_index == "IVF_SQ8":
        return {"nlist": settings.ivf_nlist}
    return {}


@dataclass(frozen=True)
class SearchBreadth:
    """How widely a search looks, per index type: HNSW's ef and DiskANN's search list are
    candidate lists (at least the hits wanted), IVF's nprobe the clusters visited."""
    ef: int
    nprobe: int

    def params(self, index_type: str, window: int) -> dict:
        if index_type == "IVF_SQ8":
            return {"nprobe": self.nprobe}
        if index_type == "DISKANN":
            return {"search_list": max(self.ef, window)}
        return {"ef": max(self.ef, window)}


class VectorStore:
    """The two collections of the serving model version, and the aliases over them."""

    def __init__(self, settings: VectorSettings):
        self.settings = settings
        self.client = MilvusClient(settings.milvus_uri, token=settings.milvus_token, timeout=settings.milvus_timeout_s)
        server = self.client.get_server_version()
        # An unparseable version takes the path that is correct everywhere.
        self.upsert_safe = _version_tuple(server) >= _UPSERT_WITH_PARTITION_KEY_FIXED
        if settings.vector_index == "HNSW_SQ" and (2, 5) > _version_tuple(server) > ():
            self.client.close()
            raise ValueError(f"VIZSEARCH_VECTOR_INDEX=HNSW_SQ needs Milvus 2.5 or later; this one is {server}")
        self._ready: set[str] = set()
        self._index_types: dict[str, str] = {}  # a collection's index never changes
        self._lock = threading.Lock()

    # -- names -----------------------------------------------------------
    def alias(self, level: str) -> str:
        return f"{self.settings.collection_prefix}_{level}"

    def collection(self, level: str, model_version: str) -> str:
        return collection_name(self.settings, level, model_version)

    # -- collections -----------------------------------------------------
    def ensure_collections(self, model_version: str, dimension: int) -> None:
        """Creates, indexes and loads both collections of this model version if they
        are missing; points the aliases at them when no alias exists yet."""
        with self._lock:
            if model_version in self._ready:
                return
            for level in LEVELS:
                name = self.collection(level, model_version)
                if not self.client.has_collection(name):
                    self._create(name, dimension)
                    logger.info("created collection %s (%d-d, %s %s)", name, dimension, self.settings.vector_index,
                                index_build_params(self.settings))
                self.client.load_collection(name, replica_number=self.settings.milvus_replicas)
                if self.alias_target(level) is None:
                    self.client.create_alias(name, self.alias(level))
            self._ready.add(model_version)

    def _create(self, name: str, dimension: int) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("dataset", DataType.VARCHAR, max_length=128, is_partition_key=True)
        schema.add_field("key", DataType.VARCHAR, max_length=MAX_KEY_CHARS * 4)  # bytes of UTF-8
        schema.add_field("width", DataType.INT32)
        schema.add_field("height", DataType.INT32)
        schema.add_field("sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("label", DataType.VARCHAR, max_length=MAX_LABEL_CHARS * 4)
        schema.add_field("source", DataType.VARCHAR, max_length=16)
        schema.add_field("score", DataType.FLOAT)
        for field in ("box_x1", "box_y1", "box_x2", "box_y2", "box_area"):
            schema.add_field(field, DataType.FLOAT)
        schema.add_field("indexed_at", DataType.INT64)
        # An image entry's object count and boxes: an image search shows the boxes without
        # a second query (it looks them up only when they were too many to store here).
        schema.add_field("objects", DataType.INT32)
        schema.add_field("boxes", DataType.VARCHAR, max_length=MAX_BOXES_BYTES)
        schema.add_field("labels", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_IMAGE_LABELS,
                         max_length=MAX_LABEL_CHARS * 4)
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=self.settings.vector_index, metric_type="COSINE",
                        params=index_build_params(self.settings))
        try:
            self.client.create_collection(name, schema=schema, index_params=index)
        except Exception:
            if not self.client.has_collection(name):  # another process created it first: fine
                raise

    def alias_target(self, level: str) -> str | None:
        """The collection the level's alias points at; None if there is no alias. Raises
        MilvusException when Milvus cannot be reached (an outage is not a missing alias)."""
        try:
            return self.client.describe_alias(self.alias(level))["collection_name"]
        except MilvusException:
            self.client.get_server_version()  # raises if the server is away: only then is it an outage
            return None

    def serving_version(self, level: str = "images") -> str | None:
        """The model version the alias currently serves (None for another schema revision)."""
        target = self.alias_target(level)
        prefix, suffix = f"{self.settings.collection_prefix}_{level}_", f"_r{SCHEMA_REVISION}"
        if target and target.startswith(prefix) and target.endswith(suffix):
            return target[len(prefix):-len(suffix)]
        return None

    def switch_aliases(self, model_version: str) -> None:
        """Serves this model version's collections from now on."""
        for level in LEVELS:
            self.client.alter_alias(self.collection(level, model_version), self.alias(level))

    # -- writes ----------------------------------------------------------
    def write(self, model_version: str, level: str, entries: Sequence[Entry]) -> None:
        """Upserts: writing an entry twice leaves one copy with the latest fields."""
        if not entries:
            return
        name = self.collection(level, model_version)
        rows = [entry.row(model_version) for entry in entries]
        if self.upsert_safe:
            self.client.upsert(name, rows)
        else:
            # The same effect on servers with the partition-key upsert bug.
            self.client.delete(name, filter=f"id in {quote_list(row['id'] for row in rows)}")
            self.client.insert(name, rows)

    def delete_keys(self, model_version: str, level: str, dataset: str, keys: Sequence[str],
                    keep_ids: Iterable[str] = ()) -> None:
        """Removes the keys' entries at one level, except those in keep_ids."""
        if not keys:
            return
        expression = f"dataset == {quote(dataset)} and key in {quote_list(keys)}"
        keep = list(keep_ids)
        if keep:
            expression += f" and id not in {quote_list(keep)}"
        self.client.delete(self.collection(level, model_version), filter=expression)

    def delete_ids(self, model_version: str, level: str, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection(level, model_version), filter=f"id in {quote_list(ids)}")

    def delete_dataset(self, model_version: str, dataset: str) -> int:
        deleted = 0
        for level in LEVELS:
            deleted += self.count(model_version, level, dataset)
            self.client.delete(self.collection(level, model_version), filter=f"dataset == {quote(dataset)}")
        return deleted

    # -- reads -----------------------------------------------------------
    def count(self, model_version: str, level: str, dataset: str) -> int:
        """Entries of a dataset; Strong consistency, so writes just made are counted."""
        rows = self.client.query(
            self.collection(level, model_version), filter=f"dataset == {quote(dataset)}",
            output_fields=["count(*)"], consistency_level="Strong",
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def entry_ids(self, model_version: str, level: str, dataset: str, annotated_only: bool = False,
                  page: int = 1000) -> Iterator[list[tuple[str, str]]]:
        """The (id, key) of a dataset's entries at a level (with annotated_only, its ground-truth
        boxes), a page at a time."""
        for rows in self.entry_pages(model_version, level, dataset, ["key"], page, annotated_only):
            yield [(row["id"], row["key"]) for row in rows]

    def entry_pages(self, model_version: str, level: str, dataset: str, fields: Sequence[str], page: int = 1000,
                    annotated_only: bool = False) -> Iterator[list[dict]]:
        """A dataset's entries at a level, with these fields (and their ids), a page at a time."""
        pages = self.client.query_iterator(
            self.collection(level, model_version), batch_size=page, filter=_scope([dataset], annotated_only),
            output_fields=list(fields), consistency_level="Strong")
        try:
            while rows := pages.next():
                yield rows
        finally:
            pages.close()

    def entries_by_id(self, model_version: str, level: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict]:
        """The entries with these ids that are still there, with these fields."""
        return self.client.query(
            self.collection(level, model_version), filter=f"id in {quote_list(ids)}", output_fields=list(fields),
            consistency_level="Strong", limit=len(ids))

    def nearest(self, model_version: str, level: str, vectors: Sequence[Sequence[float]], limit: int,
                breadth: SearchBreadth, datasets: Sequence[str], fields: Sequence[str],
                annotated_only: bool = False) -> list[list[dict]]:
        """For each vector, its nearest entries in these datasets (with annotated_only, ground-truth
        boxes only), best first, in one batched search: each hit's fields, id and similarity."""
        name = self.collection(level, model_version)
        if name not in self._index_types:
            self._index_types[name] = self.client.describe_index(name, "vector").get("index_type", "HNSW")
        hits = self.client.search(
            name, data=[list(map(float, v)) for v in vectors], limit=limit, filter=_scope(datasets, annotated_only),
            output_fields=list(fields), consistency_level="Strong",
            search_params={"metric_type": "COSINE", "params": breadth.params(self._index_types[name], limit)})
        return [[{**hit["entity"], "id": hit["id"], "similarity": float(hit["distance"])} for hit in per_vector]
                for per_vector in hits]

    def images_with_content(self, model_version: str, sha256s: Sequence[str], datasets: Sequence[str],
                            limit: int = 16384) -> list[dict]:
        """The image entries in these datasets whose file has one of these SHA-256s."""
        return self.client.query(
            self.collection("images", model_version),
            filter=f"dataset in {quote_list(datasets)} and sha256 in {quote_list(sha256s)}",
            output_fields=["dataset", "key", "sha256"], consistency_level="Strong", limit=limit)

    def entries(self, model_version: str, level: str, dataset: str, fields: Sequence[str],
                limit: int = RESULT_WINDOW) -> list[dict]:
        return self.client.query(
            self.collection(level, model_version), filter=f"dataset == {quote(dataset)}",
            output_fields=list(fields), consistency_level="Strong", limit=limit,
        )

    def close(self) -> None:
        self.client.close()


def collection_name(settings: VectorSettings, level: str, model_version: str) -> str:
    return f"{settings.collection_prefix}_{level}_{model_version}_r{SCHEMA_REVISION}"


class VectorReader:
    """The read side, for the query service: asynchronous, so a search waits on
    Milvus without a thread hop. Same collections and names as VectorStore."""

    def __init__(self, settings: VectorSettings):
        self.settings = settings
        self.client = AsyncMilvusClient(settings.milvus_uri, token=settings.milvus_token,
                                        timeout=settings.milvus_timeout_s)
        self._index_types: dict[str, str] = {}

    def collection(self, level: str, model_version: str) -> str:
        return collection_name(self.settings, level, model_version)

    async def _index_type(self, name: str) -> str:
        """The collection's own index type (whatever the settings now say for new ones); a
        collection's index never changes, so it is asked for once."""
        if name not in self._index_types:
            info = await self.client.describe_index(name, "vector")
            self._index_types[name] = info.get("index_type", "HNSW")
        return self._index_types[name]

    async def answers(self, model_version: str, consistency: str) -> None:
        """Raises unless Milvus answers a read of the images collection at this consistency
        (a collection not created yet, with nothing indexed, answers too)."""
        try:
            await self.query(model_version, "images", 'id == ""', ["id"], 1, consistency)
        except Exception as error:  # noqa: BLE001 - anything but "nothing indexed yet" means no answer
            if not is_missing_collection(error):
                raise

    async def search(self, model_version: str, level: str, vector: Sequence[float], limit: int, offset: int = 0,
                     expression: str = "", output_fields: Sequence[str] = (), *, breadth: SearchBreadth,
                     consistency: str = "Bounded") -> list[dict]:
        """Nearest entries by cosine similarity, best first: each hit's fields plus `similarity`
        (the entry's own `score` field is a detector's score)."""
        name = self.collection(level, model_version)
        params = breadth.params(await self._index_type(name), limit + offset)
        hits = (await self.client.search(
            name, data=[list(map(float, vector))], limit=limit, filter=expression,
            output_fields=list(output_fields), consistency_level=consistency,
            search_params={"metric_type": "COSINE", "params": params, "offset": offset},
        ))[0]
        return [{**hit["entity"], "id": hit["id"], "similarity": float(hit["distance"])} for hit in hits]

    async def query(self, model_version: str, level: str, expression: str, output_fields: Sequence[str],
                    limit: int, consistency: str = "Bounded") -> list[dict]:
        return await self.client.query(self.collection(level, model_version), filter=expression,
                                       output_fields=list(output_fields), consistency_level=consistency, limit=limit)

    async def vectors_by_id(self, model_version: str, level: str, ids: Sequence[str]) -> dict[str, list[float]]:
        rows = await self.query(model_version, level, f"id in {quote_list(ids)}", ["vector"], len(ids))
        return {row["id"]: list(row["vector"]) for row in rows}

    async def close(self) -> None:
        await self.client.close()
