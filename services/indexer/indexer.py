"""The indexer's control side: datasets, scans, bucket events, the reconciler.

Blocking code (Redis, Milvus, storage); the gRPC servicer and the webhook call
it from worker threads. Work is planned in the work ledger and sent by the
dispatcher; the Celery workers do it.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from pymilvus.exceptions import MilvusException

from services.common.genproto.vizsearch.v1 import indexer_pb2
from services.common.storage import ObjectNotFound
from services.common.wire import FINISHED_JOB_STATES
from services.indexer.analysis import ResultCache, plan_unit
from services.indexer.catalog import DatasetConfig
from services.indexer.dispatcher import Dispatcher
from services.indexer.duplicates import group_pairs, parse_pairs
from services.indexer.events import DatasetChanges
from services.indexer.ingest import chunks
from services.indexer.jobs import DUPLICATES, EVENT, MAP, RECONCILE, SCAN, SUSPECTS
from services.indexer.maps import read_points, sample
from services.indexer.state import IndexerState, Transient
from services.indexer.suspects import rank_suspects
from services.indexer.work import SCAN_UNIT, batch_units
from vizsearch.models import MAP_POINTS_SHOWN, MAX_MAP_POINTS
from vizsearch.names import check_dataset_name

logger = logging.getLogger(__name__)
# A worker that wrote for a dataset just deleted and died before taking it back leaves
# entries; the reconciler deletes a dataset's entries again for this long after.
_DELETED_WATCH_S = 600.0
RESERVED_PREFIXES = (".", "_")
MAX_RESULTS_PAGE = 1000
MAP_LEVELS = ("images", "objects")


class UnknownDataset(LookupError):
    pass


class Indexer:
    def __init__(self, state: IndexerState, dispatcher: Dispatcher):
        self.state = state
        self.dispatcher = dispatcher
        self.catalog = state.catalog
        self.jobs = state.jobs
        self.settings = state.settings
        self._ignored_prefixes: set[str] = set()  # warned about once
        self._analysis_results = ResultCache()
        self._maps = ResultCache(kept=2)  # a map's points take tens of MB

    # -- datasets --------------------------------------------------------
    def create(self, name: str, box_margin: float | None) -> indexer_pb2.Dataset:
        check_dataset_name(name)
        if box_margin is not None and not 0 <= box_margin <= 1:
            raise ValueError(f"box_margin is {box_margin}: give a fraction of the box side between 0 and 1")
        config = DatasetConfig(box_margin) if box_margin is not None else None
        self.catalog.register(name, config, explicit=True)
        return self.get(name)

    def get(self, name: str) -> indexer_pb2.Dataset:
        if not self.catalog.exists(name):
            raise UnknownDataset(f"no dataset {name!r}")
        version = self.state.model().version
        vectors = self.state.vectors
        return indexer_pb2.Dataset(
            name=name,
            config=indexer_pb2.DatasetConfig(box_margin=self.catalog.config(name).box_margin),
            images=vectors.count(version, "images", name),
            objects=vectors.count(version, "objects", name),
            failed=self.catalog.failed_count(version, name),
            last_job=self.jobs.latest(name),
        )

    def all(self) -> list[indexer_pb2.Dataset]:
        # Each count waits on Milvus's Strong consistency (a time tick): wait for them together.
        names = self.catalog.names()
        with ThreadPoolExecutor(min(8, max(1, len(names)))) as pool:
            return [view for view in pool.map(self._get_if_still_there, names) if view is not None]

    def _get_if_still_there(self, name: str) -> indexer_pb2.Dataset | None:
        try:
            return self.get(name)
        except UnknownDataset:  # deleted while listing
            return None

    def delete(self, name: str) -> int:
        """Removes the dataset's vectors and records, and cancels its work, queued or running;
        the stored images stay, and the reconciler leaves the prefix alone until the dataset
        is created or scanned again. Returns once Milvus holds nothing of it."""
        if not self.catalog.exists(name):
            raise UnknownDataset(f"no dataset {name!r}")
        version = self.state.model().version
        jobs = self.jobs.of_dataset(name)
        self.catalog.remove(name)  # no more work is planned for it...
        running = self.state.work.cancel(jobs)  # ...what was is dropped, and running units commit nothing
        self.jobs.forget_dataset(name)
        deleted = self._delete_vectors(version, name)
        # A unit that was writing when the work was cancelled removes what it wrote; wait for
        # those, then make sure.
        deadline = time.monotonic() + self.settings.task_lease_s + 10
        while self.state.work.held(running) and time.monotonic() < deadline:
            time.sleep(0.2)
        while self._delete_vectors(version, name) and time.monotonic() < deadline:
            time.sleep(0.5)
        logger.info("deleted dataset %s (%d entries)", name, deleted)
        return deleted

    def _delete_vectors(self, version: str, name: str) -> int:
        try:
            return self.state.vectors.delete_dataset(version, name)
        except MilvusException as error:
            raise Transient(f"Milvus: {error}") from error

    # -- jobs ------------------------------------------------------------
    def scan(self, name: str, kind: str = SCAN) -> indexer_pb2.Job | None:
        """Starts a scan. One asked for always starts, so that its listing includes
        whatever was just uploaded; a periodic one (RECONCILE) only when the dataset
        has no active scan (else None)."""
        check_dataset_name(name)
        self.catalog.register(name, explicit=kind == SCAN)
        if not self.catalog.exists(name):
            return None  # deleted by its owner: not rediscovered
        if kind == SCAN:
            job_id = self.jobs.create(name, kind)
            self.jobs.claim_active(name, job_id)  # if free: the reconciler then waits for it
        else:
            job_id = self.jobs.create(name, kind, claim_active=True)
            if job_id is None:
                return None
        self.state.work.add(job_id, [(SCAN_UNIT, "")])
        self.dispatcher.dispatch()
        return self.jobs.get(job_id)

    def apply_events(self, changes: dict[str, DatasetChanges]) -> list[str]:
        """One job per dataset for the images the events name; changed annotations
        start a scan (they can touch any image). Returns the job ids. A dataset is
        never created from an event alone: its prefix must hold the object."""
        started = []
        for dataset, change in sorted(changes.items()):
            if not self.catalog.exists(dataset) and not self._exists_in_storage(dataset, change):
                continue
            if not self.catalog.register(dataset) and not self.catalog.exists(dataset):
                continue  # deleted by its owner
            if change.annotations_changed:
                job = self.scan(dataset, kind=RECONCILE)
                if job is not None:
                    started.append(job.id)
            if change.images:
                keys = sorted(change.images)
                job_id = self.jobs.create(dataset, EVENT)
                self.jobs.plan(job_id, total=len(keys))
                self.state.work.add(job_id, batch_units(chunks(keys, self.settings.batch_size)))
                started.append(job_id)
        if started:
            self.dispatcher.dispatch()
        return started

    def _exists_in_storage(self, dataset: str, change: DatasetChanges) -> bool:
        for key in sorted(change.images | change.annotation_files)[:10]:
            try:
                self.state.store.stat(dataset, key)
                return True
            except ObjectNotFound:
                continue
        return False

    def job(self, job_id: str) -> indexer_pb2.Job | None:
        return self.jobs.get(job_id)

    # -- analysis jobs: duplicates, suspect labels ----------------------------
    def find_duplicates(self, name: str, against: list[str], threshold: float | None) -> indexer_pb2.Job:
        """Starts a duplicates job: the dataset's images against its own and `against`'s."""
        for dataset in (name, *against):
            self._check_exists(dataset)
        if threshold is None:
            threshold = self.settings.duplicate_threshold
        elif not 0 < threshold <= 1:
            raise ValueError(f"threshold is {threshold}: give a cosine similarity above 0 and at most 1")
        datasets = [name, *sorted(set(against) - {name})]
        return self._start_analysis(name, DUPLICATES, indexer_pb2.DuplicateSearch(datasets=datasets,
                                                                                  threshold=threshold))

    def duplicates(self, name: str, job_id: str = "", limit: int = 50,
                   offset: int = 0) -> indexer_pb2.GetDuplicatesResponse:
        """A duplicates job (the dataset's latest if none is named) and, once it has finished,
        a page of the groups it found."""
        job, groups = self._analysis_results_of(name, DUPLICATES, job_id, limit, offset,
                                                lambda found: group_pairs(parse_pairs(found)))
        reply = indexer_pb2.GetDuplicatesResponse(job=job)
        if groups is not None:
            reply.groups.extend(groups[offset:offset + (limit or 50)])
            reply.total_groups = len(groups)
            reply.duplicate_images = sum(len(g.images) for g in groups)
        return reply

    def find_suspects(self, name: str, neighbours: int | None, min_agreement: float | None) -> indexer_pb2.Job:
        """Starts a suspect-labels job over the dataset's annotated boxes."""
        self._check_exists(name)
        neighbours = self.settings.suspect_neighbours if neighbours is None else neighbours
        min_agreement = self.settings.suspect_min_agreement if min_agreement is None else min_agreement
        if not 1 <= neighbours <= 1000:
            raise ValueError(f"neighbours is {neighbours}: give 1 to 1000")
        if not 0 < min_agreement <= 1:
            raise ValueError(f"min_agreement is {min_agreement}: give a share above 0 and at most 1")
        return self._start_analysis(name, SUSPECTS, indexer_pb2.SuspectSearch(neighbours=neighbours,
                                                                              min_agreement=min_agreement))

    def suspects(self, name: str, job_id: str = "", limit: int = 50, offset: int = 0,
                 label: str = "") -> indexer_pb2.GetSuspectLabelsResponse:
        """A suspect-labels job (the dataset's latest if none is named) and, once it has
        finished, a page of its suspects (only those labelled `label`, if given)."""
        job, ranked = self._analysis_results_of(name, SUSPECTS, job_id, limit, offset, rank_suspects)
        reply = indexer_pb2.GetSuspectLabelsResponse(job=job)
        if ranked is not None:
            chosen = [s for s in ranked if s.label == label] if label else ranked
            reply.suspects.extend(chosen[offset:offset + (limit or 50)])
            reply.total_suspects = len(chosen)
        return reply

    def make_map(self, name: str, level: str, max_points: int | None) -> indexer_pb2.Job:
        """Starts a map job: the dataset's entries of a level projected to 2-D."""
        self._check_exists(name)
        level = level or "images"
        if level not in MAP_LEVELS:
            raise ValueError(f"level is {level!r}: give images or objects")
        max_points = self.settings.map_max_points if max_points is None else max_points
        if not 2 <= max_points <= self.settings.map_max_points:
            raise ValueError(f"max_points is {max_points}: give 2 to {self.settings.map_max_points} "
                             "(VIZSEARCH_MAP_MAX_POINTS)")
        return self._start_analysis(name, MAP, indexer_pb2.MapProjection(level=level, max_points=max_points))

    def map(self, name: str, job_id: str = "", level: str = "", points: int = 0) -> indexer_pb2.GetMapResponse:
        """A map job (the dataset's latest of the level if none is named) and, once it has
        finished, its points: all of them, or a fixed random sample of `points`."""
        level = level or "images"
        if level not in MAP_LEVELS:
            raise ValueError(f"level is {level!r}: give images or objects")
        if not 0 <= points <= MAX_MAP_POINTS:
            raise ValueError(f"points is {points}: give 1 to {MAX_MAP_POINTS} (0 for {MAP_POINTS_SHOWN})")
        job, stored = self._analysis_results_of(name, MAP, job_id, 0, 0, read_points,
                                                accept=lambda job: job.map.level == level, cache=self._maps)
        reply = indexer_pb2.GetMapResponse(job=job)
        if stored is not None:
            reply.points.extend(sample(stored, points or MAP_POINTS_SHOWN))
            reply.total_points = len(stored)
        return reply

    def _check_exists(self, name: str) -> None:
        check_dataset_name(name)
        if not self.catalog.exists(name):
            raise UnknownDataset(f"no dataset {name!r}")

    def _start_analysis(self, name: str, kind: str, parameters) -> indexer_pb2.Job:
        job_id = self.jobs.create(name, kind, parameters=parameters)
        self.state.work.add(job_id, [(plan_unit(kind), "")])
        self.dispatcher.dispatch()
        return self.jobs.get(job_id)

    def _analysis_results_of(self, name: str, kind: str, job_id: str, limit: int, offset: int,
                             build, accept=lambda job: True, cache: ResultCache | None = None
                             ) -> tuple[indexer_pb2.Job, list | None]:
        """The job (named, or the dataset's latest of the kind that `accept` takes) and its
        results (built from its findings once, then kept); None for the results of a job
        that has not finished, or failed."""
        if not 0 <= limit <= MAX_RESULTS_PAGE or offset < 0:
            raise ValueError(f"limit is {limit} and offset {offset}: give a limit of 1 to {MAX_RESULTS_PAGE} "
                             "(0 for 50) and an offset of 0 or more")
        self._check_exists(name)
        job = self.jobs.get(job_id, max_failures=100) if job_id else self.jobs.latest_of_kind(name, kind, accept)
        if job is None or job.dataset != name or job.kind != kind:
            raise LookupError(f"no {kind} job {job_id!r} of dataset {name!r}" if job_id else
                              f"no {kind} job of dataset {name!r} yet: start one first")
        if job.state not in FINISHED_JOB_STATES or job.state == indexer_pb2.JOB_STATE_FAILED:
            return job, None
        return job, (cache or self._analysis_results).get(job.id, lambda: build(self.jobs.findings(job.id)))

    # -- the reconciler --------------------------------------------------
    def reconcile(self) -> None:
        """One pass: registers new top-level prefixes, scans every dataset that is
        not busy, removes whatever a dead worker wrote for a dataset deleted lately,
        and serves a new model's collections once they are complete."""
        for name in self.state.store.datasets():
            if name.startswith(RESERVED_PREFIXES):
                continue  # the gateway's thumbnails, tools' droppings: never datasets
            try:
                if self.catalog.register(name):
                    logger.info("found new dataset %s", name)
            except ValueError as error:
                if name not in self._ignored_prefixes:
                    self._ignored_prefixes.add(name)
                    logger.warning("ignoring prefix %r: %s", name, error)
        for name in self.catalog.names():
            self.scan(name, kind=RECONCILE)
        version = self.state.model().version
        for name in self.catalog.recently_deleted(within_s=_DELETED_WATCH_S):
            self._delete_vectors(version, name)
        self.maybe_switch_aliases()

    def maybe_switch_aliases(self) -> bool:
        """After a model change the aliases still serve the old model's collections;
        they move once every dataset has a finished scan under the new model."""
        version = self.state.model().version
        vectors = self.state.vectors
        if vectors.serving_version() == version:
            return False
        for name in self.catalog.names():
            if self.jobs.active_job(name) is not None:
                return False
            scanned = [j for j in self.jobs.recent(name, limit=20) if j.kind in (SCAN, RECONCILE)]
            if not any(j.model_version == version and j.state in FINISHED_JOB_STATES for j in scanned):
                return False
        vectors.switch_aliases(version)
        logger.info("now serving model version %s", version)
        return True
