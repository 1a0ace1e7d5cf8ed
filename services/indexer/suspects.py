"""Suspect labels: annotated boxes whose nearest annotated boxes agree on another label,
probably mislabelled. A job over a dataset's ground-truth boxes, run as analysis.py
describes.

Each box's neighbours (not itself, nor the same box in a copy of its image) vote for
their own labels, each with its similarity as weight. A box is a suspect when one other
label has at least the job's min_agreement share of the votes and more than the box's
own label; it is ranked by that share, then by how alike the voters are. A finding is
named by the box's entry, so a batch delivered twice writes the same ones.
"""

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from pymilvus.exceptions import MilvusException

from services.common.genproto.vizsearch.v1 import common_pb2, indexer_pb2
from services.common.vectors import SearchBreadth
from services.indexer.analysis import batch_entries, plan_batches
from services.indexer.jobs import DONE, SKIPPED, SUSPECTS
from services.indexer.state import IndexerState, Transient
from services.indexer.work import Results

_BOX = ["box_x1", "box_y1", "box_x2", "box_y2"]
_FIELDS = ["key", "sha256", "label", *_BOX]
# Hits beyond the neighbours wanted: the box itself, and the same box in copies of its image.
_SPARE_HITS = 4
_SAME_BOX_PX = 1.0


class SuspectFinder:
    """The workers' side: plan a suspect-labels job, vote on a batch of its boxes."""

    def __init__(self, state: IndexerState):
        self.state = state
        self.settings = state.settings
        self.jobs = state.jobs

    def plan(self, job_id: str, dataset: str) -> Results | None:
        return plan_batches(self.state, job_id, dataset, SUSPECTS, "objects", annotated_only=True)

    def compare(self, job_id: str, dataset: str, payload: str, check_wanted: Callable[[], None]) -> Results:
        """The suspects among a batch of the job's boxes, and each box's outcome (skipped:
        removed from the index since the plan)."""
        entries = batch_entries(payload)
        found = self.jobs.analysis(job_id, indexer_pb2.SuspectSearch)
        if found is None:
            return Results()  # forgotten: the commit finds the unit cancelled
        version, search = found
        vectors, ef = self.state.vectors, self.settings.analysis_search_ef
        try:
            rows = vectors.entries_by_id(version, "objects", [entry_id for entry_id, _ in entries],
                                         [*_FIELDS, "width", "height", "vector"])
            check_wanted()
            neighbours = vectors.nearest(
                version, "objects", [row["vector"] for row in rows], search.neighbours + _SPARE_HITS,
                SearchBreadth(ef=ef, nprobe=ef), [dataset], _FIELDS, annotated_only=True) if rows else []
        except MilvusException as error:
            raise Transient(f"Milvus: {error}") from error
        findings = []
        for row, hits in zip(rows, neighbours):
            voters = [hit for hit in hits if not _same_object(row, hit)][:search.neighbours]
            verdict = vote(row["label"], voters, search.min_agreement)
            if verdict is not None:
                suggested, agreement = verdict
                findings.append((row["id"], json.dumps({
                    "key": row["key"], "box": [row[f] for f in _BOX], "size": [row["width"], row["height"]],
                    "label": row["label"], "suggested": suggested,
                    "agreement": round(agreement, 6),
                    "neighbours": [[v["key"], [v[f] for f in _BOX], v["label"], round(v["similarity"], 6)]
                                   for v in voters if v["label"] == suggested]}, ensure_ascii=False)))
        present = {row["id"] for row in rows}
        return Results(outcomes=[(name, DONE if entry_id in present else SKIPPED, "", 0) for entry_id, name in entries],
                       findings=sorted(findings))


def _same_object(row: dict, hit: dict) -> bool:
    """The box itself, or the same box in an exact copy of its image."""
    return hit["id"] == row["id"] or (
        hit["sha256"] == row["sha256"] and all(abs(hit[f] - row[f]) <= _SAME_BOX_PX for f in _BOX))


def vote(label: str, voters: Sequence[dict], min_agreement: float) -> tuple[str, float] | None:
    """(the label the voters agree on instead, its share of their similarity-weighted votes),
    or None when the box's own label holds."""
    weights: dict[str, float] = defaultdict(float)
    for voter in voters:
        weights[voter["label"]] += max(voter["similarity"], 0.0)
    total = sum(weights.values())
    others = [other for other in weights if other != label]
    if total <= 0 or not others:
        return None
    best = max(others, key=lambda other: (weights[other], other))
    if weights[best] <= weights.get(label, 0.0) or weights[best] / total < min_agreement:
        return None
    return best, weights[best] / total


def _box(values: Sequence[float]) -> common_pb2.Box:
    return common_pb2.Box(x1=values[0], y1=values[1], x2=values[2], y2=values[3])


def rank_suspects(stored: Iterable[tuple[bytes, bytes]]) -> list[indexer_pb2.SuspectLabel]:
    """The stored findings, most certain first: by agreement, then by the voters' mean similarity."""
    suspects = []
    for _, value in stored:
        finding = json.loads(value)
        suspects.append(indexer_pb2.SuspectLabel(
            key=finding["key"], box=_box(finding["box"]), width=finding["size"][0], height=finding["size"][1],
            label=finding["label"],
            suggested_label=finding["suggested"], agreement=finding["agreement"],
            neighbours=[indexer_pb2.SuspectNeighbour(key=key, box=_box(box), label=label, similarity=similarity)
                        for key, box, label, similarity in finding["neighbours"]]))

    def certainty(suspect: indexer_pb2.SuspectLabel) -> tuple:
        closeness = sum(n.similarity for n in suspect.neighbours) / max(len(suspect.neighbours), 1)
        return -round(suspect.agreement, 6), -closeness, suspect.key, suspect.box.x1, suspect.box.y1

    return sorted(suspects, key=certainty)
