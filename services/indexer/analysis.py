"""Jobs that read the index and write nothing to it: duplicates (duplicates.py) and suspect
labels (suspects.py). Each is planned and run like an ingestion, by the same workers
through the same work ledger: a plan unit pages through the dataset's entries and plans
batches of them; each batch searches the index for its entries' neighbours and commits
what it found (the job's findings, name -> JSON) with its entries' outcomes, atomically.
A finding is named by what it is about, so a batch delivered twice writes the same ones.
The results are built from the findings when they are first read, and kept."""

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from pymilvus.exceptions import MilvusException

from services.common.vectors import is_missing_collection
from services.indexer.ingest import chunks
from services.indexer.state import IndexerState, Transient
from services.indexer.work import Results, batch_units

logger = logging.getLogger(__name__)
# Finished jobs whose results the indexer keeps built (their findings never change).
_RESULTS_KEPT = 8


class Analysis(Protocol):
    """What the worker runs for an analysis job: its plan and its batches."""

    def plan(self, job_id: str, dataset: str) -> Results | None: ...

    def compare(self, job_id: str, dataset: str, payload: str, check_wanted: Callable[[], None]) -> Results: ...


def plan_unit(kind: str) -> str:
    return f"{kind}:plan"


def analysis_of(unit: str) -> tuple[str, bool] | None:
    """(job kind, whether it is the plan) of an analysis job's unit; None for ingestion's."""
    kind, separator, part = unit.partition(":")
    return (kind, part == "plan") if separator else None


def plan_batches(state: IndexerState, job_id: str, dataset: str, kind: str, level: str,
                 annotated_only: bool = False) -> Results | None:
    """The job's batches of (id, name) entries of the dataset at a level; None if the job was
    forgotten. A name is what the job's progress counts and its failures name: an image's
    key, or for a box its image's key and its entry id (an image has many boxes)."""
    version = state.model().version
    if not state.jobs.start(job_id, version):
        return None
    entries: list[tuple[str, str]] = []
    try:
        for page in state.vectors.entry_ids(version, level, dataset, annotated_only):
            entries += page if level == "images" else [(entry_id, f"{key}#{entry_id}") for entry_id, key in page]
    except MilvusException as error:
        if not is_missing_collection(error):  # missing: nothing indexed under this model yet
            raise Transient(f"Milvus: {error}") from error
    logger.info("planned %s of %s: %d %s", kind, dataset, len(entries), level)
    batches = chunks(entries, state.settings.analysis_batch_size)
    return Results(plan=(len(entries), 0), units=batch_units(batches, prefix=f"{kind}:"))


def batch_entries(payload: str) -> list[tuple[str, str]]:
    return [tuple(entry) for entry in json.loads(payload)]


class ResultCache:
    """Results of finished jobs, built once: paging through them reads Redis once."""

    def __init__(self, kept: int = _RESULTS_KEPT):
        self.kept = kept
        self._results: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str, build: Callable[[], list]) -> list:
        with self._lock:
            if job_id in self._results:
                self._results.move_to_end(job_id)
                return self._results[job_id]
        results = build()
        with self._lock:
            self._results[job_id] = results
            while len(self._results) > self.kept:
                self._results.popitem(last=False)
        return results
