"""Duplicate images: a job that compares every image of its dataset with the images of
the datasets it names (its own first), run as analysis.py describes.

Each batch reads its images' vectors, finds their nearest images (one batched search)
and their exact copies (by SHA-256, however many), and finds the pairs at or above the
threshold; a pair is named by its two images in order. Memory and cost are a batch's,
and grow linearly with the dataset. Groups are built from the pairs (group_pairs).
"""

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymilvus.exceptions import MilvusException

from services.common.genproto.vizsearch.v1 import common_pb2, indexer_pb2
from services.common.vectors import SearchBreadth
from services.indexer.analysis import batch_entries, plan_batches
from services.indexer.jobs import DONE, DUPLICATES, SKIPPED
from services.indexer.state import IndexerState, Transient
from services.indexer.work import Results

_FIELDS = ["dataset", "key", "sha256"]


class DuplicateFinder:
    """The workers' side: plan a duplicates job, compare a batch of its images."""

    def __init__(self, state: IndexerState):
        self.state = state
        self.settings = state.settings
        self.jobs = state.jobs

    def plan(self, job_id: str, dataset: str) -> Results | None:
        return plan_batches(self.state, job_id, dataset, DUPLICATES, "images")

    def compare(self, job_id: str, dataset: str, payload: str, check_wanted: Callable[[], None]) -> Results:
        """The pairs a batch of the job's images is in, and each image's outcome (skipped:
        removed from the index since the plan)."""
        entries = batch_entries(payload)
        found = self.jobs.analysis(job_id, indexer_pb2.DuplicateSearch)
        if found is None:
            return Results()  # forgotten: the commit finds the unit cancelled
        version, search = found
        settings, vectors = self.settings, self.state.vectors
        try:
            rows = vectors.entries_by_id(version, "images", [entry_id for entry_id, _ in entries], [*_FIELDS, "vector"])
            check_wanted()
            neighbours = vectors.nearest(
                version, "images", [row["vector"] for row in rows], settings.duplicate_neighbours + 1,
                SearchBreadth(ef=settings.analysis_search_ef, nprobe=settings.analysis_search_ef), search.datasets,
                _FIELDS) if rows else []
            copies = vectors.images_with_content(version, sorted({row["sha256"] for row in rows}),
                                                 search.datasets) if rows else []
        except MilvusException as error:
            raise Transient(f"Milvus: {error}") from error
        pairs: dict[str, str] = {}
        same_content = defaultdict(list)
        for copy in copies:
            same_content[copy["sha256"]].append(copy)
        for row, hits in zip(rows, neighbours):
            for hit in hits:
                if hit["id"] != row["id"] and hit["similarity"] >= search.threshold:
                    _add_pair(pairs, row, hit, hit["similarity"])
            for copy in same_content[row["sha256"]]:
                if copy["id"] != row["id"]:
                    _add_pair(pairs, row, copy, 1.0)
        present = {row["id"] for row in rows}
        return Results(outcomes=[(key, DONE if entry_id in present else SKIPPED, "", 0) for entry_id, key in entries],
                       findings=sorted(pairs.items()))


def _add_pair(pairs: dict[str, str], a: dict, b: dict, similarity: float) -> None:
    first, second = sorted([a, b], key=lambda e: (e["dataset"], e["key"]))
    name = json.dumps([[first["dataset"], first["key"]], [second["dataset"], second["key"]]], ensure_ascii=False)
    # Found from both ends, a pair keeps the higher of the two (equal but for rounding).
    previous = json.loads(pairs[name])[0] if name in pairs else -1.0
    if similarity > previous:
        pairs[name] = json.dumps([round(min(similarity, 1.0), 6), first["sha256"], second["sha256"]])


@dataclass(frozen=True)
class Pair:
    first: tuple[str, str]  # (dataset, key)
    second: tuple[str, str]
    similarity: float
    hashes: tuple[str, str]


def parse_pairs(stored: Iterable[tuple[bytes, bytes]]) -> Iterable[Pair]:
    for name, value in stored:
        (first, second), (similarity, hash_a, hash_b) = json.loads(name), json.loads(value)
        yield Pair(tuple(first), tuple(second), similarity, (hash_a, hash_b))


def group_pairs(pairs: Iterable[Pair]) -> list[indexer_pb2.DuplicateGroup]:
    """Groups of duplicates, largest first, then the most similar.

    Images with the same content are one node. Nodes are taken best connected first: each
    not yet grouped starts a group with its ungrouped neighbours, so every image in a group
    is a duplicate of its centre, and near duplicates do not chain distinct images into
    one group (connected components would). A node whose neighbours were all grouped
    before it joins the group of its most similar neighbour.
    """
    images: dict[str, set[tuple[str, str]]] = defaultdict(set)  # content hash -> its images
    edges: dict[str, dict[str, float]] = defaultdict(dict)  # hash -> neighbour hash -> similarity
    for pair in pairs:
        (first, second), similarity = pair.hashes, pair.similarity
        images[first].add(pair.first)
        images[second].add(pair.second)
        if first != second:
            edges[first][second] = edges[second][first] = max(similarity, edges[first].get(second, 0.0))

    def connections(node: str) -> tuple:
        return -(len(edges[node]) + len(images[node]) - 1), -sum(edges[node].values()), min(images[node])

    group_of: dict[str, int] = {}
    members: list[list[str]] = []
    joins: list[list[float]] = []  # the similarity each member joined its group by
    leftovers = []
    for node in sorted(images, key=connections):
        if node in group_of:
            continue
        fresh = [n for n in edges[node] if n not in group_of]
        if not fresh and len(images[node]) == 1:
            leftovers.append(node)
            continue
        for n in (node, *fresh):
            group_of[n] = len(members)
        members.append([node, *fresh])
        joins.append([edges[node][n] for n in fresh])
    for node in leftovers:
        nearest = max(edges[node], key=lambda n: (edges[node][n], n))
        group = group_of[node] = group_of[nearest]
        members[group].append(node)
        joins[group].append(edges[node][nearest])
    groups = []
    for nodes, similarities in zip(members, joins):
        copies = any(len(images[n]) > 1 for n in nodes)
        similarities = similarities + [1.0] * copies
        groups.append(indexer_pb2.DuplicateGroup(
            images=[common_pb2.ObjectRef(dataset=d, key=k)
                    for d, k in sorted(set().union(*(images[n] for n in nodes)))],
            min_similarity=min(similarities), max_similarity=max(similarities), exact=len(nodes) == 1))
    groups.sort(key=lambda g: (-len(g.images), -g.min_similarity, g.images[0].dataset, g.images[0].key))
    return groups
