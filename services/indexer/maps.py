"""A map of a dataset: its image (or object) vectors projected to 2-D with UMAP, as an
analysis job (analysis.py) of one unit.

The unit reads the entries' vectors a page at a time (a dataset with more entries than
the job's max_points is mapped from a uniform random sample of that many, kept by
reservoir sampling, so memory stays max_points vectors) and lays them out with UMAP,
cosine metric, its own approximate nearest-neighbour descent. On 100,000 128-d vectors
and two CPUs that took 82 s, against 241 s with exact neighbours from blocked matrix
products. The points are stored as the job's findings, in chunks, scaled to [0, 1] on
both axes.

The browser asks for at most as many as it can draw (GET .../map?points=N): a fixed
random sample of the stored points, the same every time, so a reload shows the same map.
"""

import json
import logging
import random
import time
from collections.abc import Callable, Iterable

import numpy as np
from pymilvus.exceptions import MilvusException

from services.common.genproto.vizsearch.v1 import common_pb2, indexer_pb2
from services.common.vectors import is_missing_collection
from services.indexer.jobs import DONE
from services.indexer.state import IndexerState, Transient
from services.indexer.work import Results

logger = logging.getLogger(__name__)

_PAGE = 1000
_POINTS_PER_FINDING = 5000
_BOX = ["box_x1", "box_y1", "box_x2", "box_y2"]
# UMAP's own defaults: a point's neighbourhood, and how tightly points may pack.
_NEIGHBOURS = 15
_MIN_DIST = 0.1


class MapMaker:
    """The workers' side: a map job is planned and done in one unit."""

    def __init__(self, state: IndexerState):
        self.state = state
        self.settings = state.settings
        self.jobs = state.jobs

    def plan(self, job_id: str, dataset: str) -> Results | None:
        version = self.state.model().version
        if not self.jobs.start(job_id, version):
            return None
        found = self.jobs.analysis(job_id, indexer_pb2.MapProjection)
        if found is None:
            return None
        _, projection = found
        level = "objects" if projection.level == "objects" else "images"
        try:
            entries = self._entries(version, level, dataset, projection.max_points)
        except MilvusException as error:
            if not is_missing_collection(error):  # missing: nothing indexed under this model yet
                raise Transient(f"Milvus: {error}") from error
            entries = []
        started = time.monotonic()
        layout = layout_of(np.stack([e["vector"] for e in entries]) if entries else np.zeros((0, 2), np.float32))
        logger.info("mapped %s of %s: %d points in %.1f s", level, dataset, len(entries), time.monotonic() - started)
        points = [_point(entry, level, x, y) for entry, (x, y) in zip(entries, layout.tolist())]
        findings = [(f"points:{i // _POINTS_PER_FINDING:06d}", json.dumps(points[i:i + _POINTS_PER_FINDING],
                                                                         ensure_ascii=False))
                    for i in range(0, len(points), _POINTS_PER_FINDING)]
        return Results(plan=(len(entries), 0), findings=findings,
                       outcomes=[(f"{e['key']}#{e['id']}", DONE, "", 0) for e in entries])

    def compare(self, job_id: str, dataset: str, payload: str, check_wanted: Callable[[], None]) -> Results:
        """Never called: a map job plans no batches (UMAP needs every point at once)."""
        raise ValueError(f"a map job has no batches: {job_id} asked for one")

    def _entries(self, version: str, level: str, dataset: str, max_points: int) -> list[dict]:
        """The entries to map, with their vectors: all of them, or a uniform sample of max_points
        (reservoir sampling: memory stays max_points vectors however large the dataset)."""
        fields = ["dataset", "key", "label", "labels", *(_BOX if level == "objects" else []), "vector"]
        kept: list[dict] = []
        seen = 0
        rng = random.Random(0)
        for page in self.state.vectors.entry_pages(version, level, dataset, fields, _PAGE):
            for entry in page:
                # As float32 at once: a vector as a list of Python floats takes eight times the memory.
                entry["vector"] = np.asarray(entry["vector"], dtype=np.float32)
                seen += 1
                if len(kept) < max_points:
                    kept.append(entry)
                elif (slot := rng.randrange(seen)) < max_points:
                    kept[slot] = entry
        return kept


def layout_of(vectors: np.ndarray) -> np.ndarray:
    """2-D coordinates of each vector, scaled to [0, 1] on both axes."""
    if len(vectors) <= _NEIGHBOURS + 1:  # too few for a neighbourhood: a circle keeps them apart
        angles = np.linspace(0, 2 * np.pi, len(vectors), endpoint=False)
        return np.stack([0.5 + 0.4 * np.cos(angles), 0.5 + 0.4 * np.sin(angles)], axis=1)
    import umap  # here: importing it compiles numba code, which only map jobs need

    layout = umap.UMAP(n_neighbors=_NEIGHBOURS, min_dist=_MIN_DIST, metric="cosine",
                       low_memory=True).fit_transform(vectors)
    low, high = layout.min(axis=0), layout.max(axis=0)
    return (layout - low) / np.where(high > low, high - low, 1.0)


def _point(entry: dict, level: str, x: float, y: float) -> list:
    box = [round(entry[f], 1) for f in _BOX] if level == "objects" else []
    label = entry["label"] if level == "objects" else ",".join(entry.get("labels") or [])
    return [round(x, 5), round(y, 5), entry["dataset"], entry["key"], label, box]


def read_points(stored: Iterable[tuple[bytes, bytes]]) -> list[indexer_pb2.MapPoint]:
    """The stored points in the order they were made."""
    points = []
    for _, value in sorted(stored):
        for x, y, dataset, key, label, box in json.loads(value):
            point = indexer_pb2.MapPoint(x=x, y=y, dataset=dataset, key=key, labels=label.split(",") if label else [])
            if box:
                point.box.CopyFrom(common_pb2.Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3]))
            points.append(point)
    return points


def sample(points: list, count: int) -> list:
    """At most `count` of the points: a fixed random sample (the same for the same points)."""
    if len(points) <= count:
        return points
    chosen = random.Random(len(points)).sample(range(len(points)), count)
    return [points[i] for i in sorted(chosen)]
