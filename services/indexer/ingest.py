"""What the workers do: plan a scan of a dataset, and index a batch of its keys.

Both are idempotent. Entries have deterministic ids and are upserted, and
neither writes to Redis: each returns its results (outcomes, manifest,
failures, the batches a scan plans), which the work ledger commits atomically
once the vectors are written. A batch cut short and run again ends in exactly
the same state; a batch whose dataset was deleted meanwhile commits nothing and
its runner removes what it wrote.
"""

import dataclasses
import hashlib
import logging
import posixpath
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import prometheus_client
import urllib3
from minio.error import S3Error
from pymilvus.exceptions import MilvusException

from services.common import images, thumbnails
from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2
from services.common.storage import Fetched, ObjectNotFound, ObjectTooLarge
from services.common.vectors import Entry, encode_boxes
from services.indexer import annotations as ann
from services.indexer.catalog import ManifestEntry
from services.indexer.jobs import DONE, FAILED_ITEM, RECONCILE, SKIPPED
from services.indexer.state import IndexerState, Transient
from services.indexer.work import Results, batch_units

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
ITEMS = prometheus_client.Counter(
    "vizsearch_ingest_items_total", "Images handled by workers, by outcome (done, skipped, failed).", ["outcome"])
OBJECTS = prometheus_client.Counter("vizsearch_ingest_objects_total", "Object entries written.")
BATCH_SECONDS = prometheus_client.Histogram(
    "vizsearch_ingest_batch_seconds", "Time to index one batch, from download to written vectors.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
# An embedding call carries at most this many embeddings (images plus their boxes; the
# embedder accepts 1024) and about this many bytes of encoded images.
_EMBED_CHUNK = 256
_EMBED_CALL_BYTES = 64 * 2**20


class Cancelled(Exception):
    """The unit is no longer wanted (its dataset was deleted, or another worker took it over)."""


def is_image_key(key: str) -> bool:
    """Images are files with an image extension, outside folders named _* or .*
    (where annotations and tool droppings live)."""
    parts = key.split("/")
    if any(part.startswith(("_", ".")) for part in parts):
        return False
    return posixpath.splitext(key)[1].lower() in IMAGE_EXTENSIONS


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass
class _Outcome:
    kind: str  # DONE | SKIPPED | FAILED_ITEM
    reason: str = ""
    objects: int = 0


@dataclass(frozen=True)
class Written:
    """The entries a batch wrote, to remove if it turns out to have been cancelled."""

    version: str
    image_ids: list[str]
    object_ids: list[str]


class Ingestor:
    """The work side's domain: what a worker does with a scan or a batch."""

    def __init__(self, state: IndexerState):
        self.state = state
        self.settings = state.settings
        self.store = state.store
        self.catalog = state.catalog
        self.jobs = state.jobs
        self._downloads = ThreadPoolExecutor(self.settings.download_threads, thread_name_prefix="download")

    # -- scans -----------------------------------------------------------
    def scan(self, job_id: str, dataset: str) -> Results | None:
        """Lists the dataset, reads its annotations, and plans the job: its size and its
        batches of keys that are new, changed or gone. None when there is nothing to do
        (a periodic reconcile that found no change, or a drop still being uploaded): the
        job is then forgotten."""
        version = self.state.model().version
        if not self.jobs.start(job_id, version):
            return None  # forgotten meanwhile (its dataset deleted)
        try:
            objects = list(self.store.list(dataset))
        except (S3Error, urllib3.exceptions.HTTPError) as error:
            raise Transient(f"object storage: {error}") from error
        job = self.jobs.get(job_id, max_failures=1)
        if job is not None and job.kind == RECONCILE and not self._settled(dataset, objects):
            self.jobs.discard_if_reconcile(job_id)
            logger.info("%s is still being uploaded: left for a later pass", dataset)
            return None
        listing = {o.key: o.signature for o in objects}
        images = {key: sig for key, sig in listing.items() if is_image_key(key)}
        problems: list[tuple[str, str]] = []
        boxes = self._read_annotations(dataset, [k for k in listing if ann.is_annotation_file(k)], images, problems)
        self.catalog.set_annotations(dataset, boxes)
        manifest = self.catalog.manifest(version, dataset)
        changed = [
            key for key, sig in images.items()
            if (known := manifest.get(key)) is None
            or known.signature != sig or known.annotations != ann.fingerprint(boxes.get(key, []))
        ]
        gone = [key for key in manifest if key not in images]
        # A periodic reconcile that finds nothing leaves no job behind (it is dropped
        # before it could show as finished), except the first under a new model, which
        # the alias switch waits for. An outage of Milvus is no answer: it is retried.
        if not changed and not gone and self._serving(version) and self.jobs.discard_if_reconcile(job_id):
            return None
        logger.info("planned %s: %d images, %d to index, %d gone", dataset, len(images), len(changed), len(gone))
        return Results(problems=problems, plan=(len(images) + len(gone), len(images) - len(changed)),
                       units=batch_units(chunks(sorted(changed) + sorted(gone), self.settings.batch_size)))

    def _serving(self, version: str) -> bool:
        try:
            return self.state.vectors.serving_version() == version
        except MilvusException as error:
            raise Transient(f"Milvus: {error}") from error

    def _settled(self, dataset: str, objects) -> bool:
        """True once the newest object is VIZSEARCH_RECONCILE_SETTLE_S old, or the
        dataset has been unsettled for ten times that (uploads that never pause)."""
        settle = self.settings.reconcile_settle_s
        now = time.time()
        if max((o.modified for o in objects), default=0.0) <= now - settle:
            self.catalog.clear_unsettled(dataset)
            return True
        if now - self.catalog.unsettled_since(dataset, now) > 10 * settle:
            self.catalog.clear_unsettled(dataset)
            return True
        return False

    def _read_annotations(self, dataset, files, images, problems) -> dict[str, list[ann.Annotation]]:
        resolver = ann.KeyResolver(images)
        merged: dict[str, list[ann.Annotation]] = {}
        for file_key in sorted(files):
            try:
                data = self.store.get(dataset, file_key, self.settings.max_annotation_bytes)
                boxes, found_problems = ann.parse(file_key, data, resolver)
            except (ann.AnnotationError, ObjectTooLarge) as error:
                problems.append((file_key, f"annotation file unusable: {error}"))
                continue
            except ObjectNotFound:
                continue  # removed since the listing
            except (S3Error, urllib3.exceptions.HTTPError) as error:
                raise Transient(f"object storage: {error}") from error
            problems.extend((problem.key, problem.reason) for problem in found_problems)
            for key, found in boxes.items():
                merged.setdefault(key, []).extend(found)
        return merged

    # -- batches ---------------------------------------------------------
    def index(self, dataset: str, keys: list[str], check_wanted: Callable[[], None]) -> tuple[Results, Written]:
        """Brings the index in line with what storage holds under these keys now:
        embeds new or changed images and their boxes, removes what is gone. Calls
        check_wanted (which raises Cancelled) before it writes anything."""
        with BATCH_SECONDS.time():
            return self._index(dataset, keys, check_wanted)

    def _index(self, dataset, keys, check_wanted) -> tuple[Results, Written]:
        model = self.state.model()
        version = model.version
        margin = self.catalog.config(dataset).box_margin
        fetched = dict(zip(keys, self._downloads.map(lambda k: self._fetch(dataset, k), keys)))
        boxes = self.catalog.annotations(dataset, keys)
        known = self.catalog.manifest_entries(version, dataset, keys)
        outcomes: dict[str, _Outcome] = {}
        manifest: dict[str, ManifestEntry] = {}
        gone, to_embed = [], []
        for key in keys:
            item = fetched[key]
            if item is None:
                gone.append(key)
                outcomes[key] = _Outcome(DONE)
            elif isinstance(item, ObjectTooLarge):
                outcomes[key] = _Outcome(FAILED_ITEM, str(item))
                manifest[key] = ManifestEntry(item.signature, "", ann.fingerprint(boxes.get(key, [])))
            else:
                sha = hashlib.sha256(item.data).hexdigest()
                entry = ManifestEntry(item.signature, sha, ann.fingerprint(boxes.get(key, [])))
                previous = known.get(key)
                if previous and (previous.sha256, previous.annotations) == (sha, entry.annotations):
                    manifest[key] = entry  # same bytes re-uploaded: nothing to embed
                    outcomes[key] = _Outcome(SKIPPED)
                else:
                    to_embed.append((key, item, entry))

        rendering = [self._downloads.submit(self._keep_thumbnail, dataset, key, item) for key, item, _ in to_embed]
        image_entries, object_entries, problems = self._embed(dataset, to_embed, boxes, margin, outcomes)
        for done in rendering:
            done.result()  # before the images are searchable: a results page finds their thumbnails
        for key, _, entry in to_embed:
            manifest[key] = entry  # permanent failures too: an unchanged bad file is not retried
        check_wanted()
        try:
            self._write(version, dataset, keys, gone, image_entries, object_entries, outcomes)
        except MilvusException as error:
            raise Transient(f"Milvus: {error}") from error
        for outcome in outcomes.values():
            ITEMS.labels(outcome.kind).inc()
        OBJECTS.inc(len(object_entries))
        results = Results(
            manifest=[(k, e.to_json()) for k, e in manifest.items()], unmanifest=gone,
            failing=[(k, o.reason) for k, o in outcomes.items() if o.kind == FAILED_ITEM],
            cleared=[k for k, o in outcomes.items() if o.kind == DONE],
            outcomes=[(k, outcomes[k].kind, outcomes[k].reason, outcomes[k].objects) for k in keys],
            problems=problems,
        )
        written = Written(version, [e.entry_id(version) for e in image_entries],
                          [e.entry_id(version) for e in object_entries])
        return results, written

    def _fetch(self, dataset: str, key: str) -> Fetched | ObjectTooLarge | None:
        """The object, None if it is gone, or why it is too large to use."""
        try:
            return self.store.fetch(dataset, key, self.settings.max_image_bytes)
        except ObjectNotFound:
            return None
        except ObjectTooLarge as error:
            return error
        except (S3Error, urllib3.exceptions.HTTPError) as error:
            raise Transient(f"object storage: {error}") from error

    def _keep_thumbnail(self, dataset: str, key: str, item: Fetched) -> None:
        """Renders the web app's grid thumbnail while the image's bytes are at hand (here it
        costs a few milliseconds; on a results page, rendering fifty makes a person wait).
        Best effort: the gateway renders any it does not find."""
        size = self.settings.thumbnail_size
        if not size:
            return
        name = thumbnails.name(dataset, key, item.signature, size, None, thumbnails.GRID_FORMAT)
        try:
            data = images.thumbnail(item.data, size, None, thumbnails.GRID_FORMAT, self.settings.max_image_pixels,
                                    self.settings.max_decoded_bytes)
            self.store.put(thumbnails.PREFIX, name, data, images.THUMBNAIL_FORMATS[thumbnails.GRID_FORMAT][1])
        except images.BadImage:
            pass  # the embedder says why, on the job
        except Exception as error:  # noqa: BLE001 - storage away: the gateway renders it when asked
            logger.warning("thumbnail of %s/%s not kept: %s", dataset, key, error)

    def _embed(self, dataset, to_embed, boxes, margin, outcomes):
        """Embeds each image with its boxes (sent once, decoded once by the embedder);
        returns the entries and the annotations that could not be used."""
        now = int(time.time() * 1000)
        inputs, owners = [], []
        for key, item, entry in to_embed:
            annotations = boxes.get(key, [])
            # An image with more boxes than one call holds goes in several parts (its own
            # vector is taken from the first).
            step = _EMBED_CHUNK - 1
            for group in [annotations[i:i + step] for i in range(0, len(annotations), step)] or [[]]:
                inputs.append(common_pb2.ImageInput(data=item.data, box_margin=margin, boxes=[
                    common_pb2.Box(x1=a.box[0], y1=a.box[1], x2=a.box[2], y2=a.box[3]) for a in group]))
                owners.append((key, entry, group))
        image_entries, object_entries, problems = [], [], []
        for (key, entry, group), result in zip(owners, self._embed_images(inputs)):
            if result.WhichOneof("result") == "error":
                outcomes[key] = _Outcome(FAILED_ITEM, result.error.message)
                continue
            if key not in outcomes:
                image_entries.append(Entry(dataset, key, result.vector.values, result.width, result.height,
                                           entry.sha256, now))
                outcomes[key] = _Outcome(DONE)
            for annotation, answer in zip(group, result.boxes):
                if answer.WhichOneof("result") == "error":
                    problems.append((key, f"{annotation.origin} ({annotation.label}): {answer.error.message}"))
                    continue
                object_entries.append(Entry(
                    dataset, key, answer.vector.values, result.width, result.height, result.sha256, now,
                    box=(answer.box.x1, answer.box.y1, answer.box.x2, answer.box.y2), label=annotation.label,
                    source=annotation.source, score=annotation.score,
                ))
                outcomes[key].objects += 1
        by_key: dict[str, list[Entry]] = {}
        for entry in object_entries:
            by_key.setdefault(entry.key, []).append(entry)
        # Every entry of an image carries the labels of its objects (filters on what else is in it).
        labels = {key: tuple(sorted({e.label for e in entries})) for key, entries in by_key.items()}
        image_entries = [dataclasses.replace(e, objects=outcomes[e.key].objects, labels=labels.get(e.key, ()),
                                             boxes=encode_boxes(by_key.get(e.key, []))) for e in image_entries]
        object_entries = [dataclasses.replace(e, labels=labels[e.key]) for e in object_entries]
        return image_entries, object_entries, problems

    def _embed_images(self, inputs: list) -> list:
        """One result per input, from calls of at most _EMBED_CHUNK embeddings and about
        _EMBED_CALL_BYTES of images each."""
        results, call, embeddings, size = [], [], 0, 0
        for item in inputs:
            cost = 1 + len(item.boxes)
            if call and (embeddings + cost > _EMBED_CHUNK or size + len(item.data) > _EMBED_CALL_BYTES):
                results.extend(self._embed_call(call))
                call, embeddings, size = [], 0, 0
            call.append(item)
            embeddings, size = embeddings + cost, size + len(item.data)
        if call:
            results.extend(self._embed_call(call))
        return results

    def _embed_call(self, inputs: list) -> list:
        request = embedder_pb2.EmbedImagesRequest(images=inputs)
        return list(self.state.embed_call(self.state.embedder.EmbedImages, request).results)

    def _write(self, version, dataset, keys, gone, image_entries, object_entries, outcomes):
        vectors = self.state.vectors
        vectors.write(version, "images", image_entries)
        vectors.write(version, "objects", object_entries)
        indexed = {e.key for e in image_entries}
        # Entries of keys that are gone or now fail, and boxes no longer annotated, go.
        stale = [k for k in keys if k not in indexed and (k in gone or outcomes[k].kind == FAILED_ITEM)]
        vectors.delete_keys(version, "images", dataset, stale)
        vectors.delete_keys(version, "objects", dataset, sorted(set(stale) | indexed),
                            keep_ids=[e.entry_id(version) for e in object_entries])

    def undo(self, written: Written) -> None:
        """Removes what a cancelled batch wrote."""
        try:
            for level, ids in (("images", written.image_ids), ("objects", written.object_ids)):
                self.state.vectors.delete_ids(written.version, level, ids)
        except MilvusException as error:
            raise Transient(f"Milvus: {error}") from error

    @staticmethod
    def failed(keys: list[str], reason: str) -> Results:
        """A batch that cannot be done, recorded as failed so its job still ends. The
        manifest is left alone: the next scan tries these keys again."""
        return Results(outcomes=[(key, FAILED_ITEM, reason, 0) for key in keys])

    def close(self) -> None:
        self._downloads.shutdown(wait=False)
