"""Ingestion jobs, kept in Redis: what a scan or a batch of bucket events has to
do, and how far it got.

Tasks are delivered at least once, so progress is recorded per key, not as
counters: a key lands in exactly one of the job's done, skipped or failed
sets (written by the work ledger's commit, services/indexer/work.py), and a
redelivered batch changes nothing. The job finishes (atomically, once) when
every planned key has an outcome. Unfinished jobs are listed in vz:jobs:open,
so the indexer can find those whose work was lost.
"""

import json
import secrets
import time
from collections.abc import Callable, Iterator

import redis
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common import tracing
from services.common.genproto.vizsearch.v1 import indexer_pb2
from services.common.wire import JOB_STATE_ENUMS

QUEUED, RUNNING, SUCCEEDED, COMPLETED_WITH_FAILURES, FAILED = (
    "queued", "running", "succeeded", "completed_with_failures", "failed")
FINISHED = (SUCCEEDED, COMPLETED_WITH_FAILURES, FAILED)
DONE, SKIPPED, FAILED_ITEM = "done", "skipped", "failed"
# What started a job: a scan asked for, the periodic reconciler, or bucket events; or what a
# job that indexes nothing looks for (services/indexer/analysis.py).
SCAN, RECONCILE, EVENT = "scan", "reconcile", "event"
DUPLICATES, SUSPECTS, MAP = "duplicates", "suspects", "map"
# An analysis job's parameters: the Job field that carries them, and their message.
ANALYSIS_PARAMETERS = {DUPLICATES: indexer_pb2.DuplicateSearch, SUSPECTS: indexer_pb2.SuspectSearch,
                       MAP: indexer_pb2.MapProjection}

# KEYS: job hash, done set, skipped set, failed hash, problems hash, active-job key, open-jobs set
# ARGV: now, job id
_MAYBE_FINISH = """
local job = KEYS[1]
local state = redis.call('HGET', job, 'state')
if state == 'succeeded' or state == 'completed_with_failures' or state == 'failed' then return state end
if redis.call('HGET', job, 'planned') ~= '1' then return state end
local total = tonumber(redis.call('HGET', job, 'total') or '0')
local outcomes = redis.call('SCARD', KEYS[2]) + redis.call('SCARD', KEYS[3]) + redis.call('HLEN', KEYS[4])
  + tonumber(redis.call('HGET', job, 'unchanged') or '0')
if outcomes < total then return state end
local final = 'succeeded'
if redis.call('HLEN', KEYS[4]) + redis.call('HLEN', KEYS[5]) > 0 then final = 'completed_with_failures' end
redis.call('HSET', job, 'state', final, 'finished_at', ARGV[1])
if redis.call('GET', KEYS[6]) == ARGV[2] then redis.call('DEL', KEYS[6]) end
redis.call('SREM', KEYS[7], ARGV[2])
return final
"""

# KEYS: job hash, done, skipped, failed, problems, active-job key, dataset's job index, all-jobs index,
#       open-jobs set
# ARGV: job id
_DISCARD_IF_RECONCILE = """
if redis.call('HGET', KEYS[1], 'kind') ~= 'reconcile' then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
redis.call('ZREM', KEYS[7], ARGV[1]); redis.call('ZREM', KEYS[8], ARGV[1]); redis.call('SREM', KEYS[9], ARGV[1])
return 1
"""
_OPEN = "vz:jobs:open"

# KEYS: job hash. ARGV: state, now, model version. Only a job that still exists.
_START = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'started_at', ARGV[2], 'updated_at', ARGV[2], 'model_version', ARGV[3])
return 1
"""


def throughput(processed: int, unchanged: int, started_at: float, finished_at: float) -> float:
    """Images per second handled by workers since the job started (unchanged images were
    never handed to one)."""
    worked = processed - unchanged
    elapsed = (finished_at or time.time()) - started_at if started_at else 0.0
    return worked / elapsed if elapsed > 0 and worked > 0 else 0.0


def _timestamp(seconds: float) -> Timestamp | None:
    if not seconds:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class JobStore:
    def __init__(self, client: redis.Redis, history: int = 1000):
        self.redis = client
        self.history = history
        self._finish = client.register_script(_MAYBE_FINISH)
        self._start = client.register_script(_START)
        self._discard = client.register_script(_DISCARD_IF_RECONCILE)

    # -- keys ------------------------------------------------------------
    @staticmethod
    def _job(job_id: str) -> str:
        return f"vz:job:{job_id}"

    def record_keys(self, job_id: str) -> list[str]:
        """Where a job's progress is written: its hash, done, skipped, failed and problems."""
        base = self._job(job_id)
        return [base, f"{base}:done", f"{base}:skipped", f"{base}:failed", f"{base}:problems"]

    def findings_key(self, job_id: str) -> str:
        """What a job that indexes nothing found (duplicate pairs, suspect labels): name -> JSON."""
        return f"{self._job(job_id)}:findings"

    def _all_keys(self, job_id: str) -> list[str]:
        return [*self.record_keys(job_id), self.findings_key(job_id)]

    @staticmethod
    def _active(dataset: str) -> str:
        return f"vz:active:{dataset}"

    # -- lifecycle -------------------------------------------------------
    def create(self, dataset: str, kind: str, model_version: str = "", claim_active: bool = False,
               parameters: Message | None = None) -> str | None:
        """A new queued job. With claim_active, it becomes the dataset's active scan,
        or None is returned if another is active: the reconciler leaves busy datasets alone.
        An analysis job is given its parameters."""
        job_id = new_job_id()
        if claim_active and not self.redis.set(self._active(dataset), job_id, nx=True):
            return None
        now = time.time()
        trace = tracing.context_headers()
        with self.redis.pipeline() as pipe:
            pipe.hset(self._job(job_id), mapping={
                "dataset": dataset, "kind": kind, "model_version": model_version, "state": QUEUED,
                "total": 0, "unchanged": 0, "objects": 0, "planned": 0, "created_at": now, "updated_at": now,
                **({"trace": json.dumps(trace)} if trace else {}),
                **({"parameters": parameters.SerializeToString()} if parameters is not None else {}),
            })
            pipe.zadd(f"vz:jobs:{dataset}", {job_id: now})
            pipe.zadd("vz:jobs", {job_id: now})
            pipe.sadd(_OPEN, job_id)
            pipe.execute()
        self._trim(dataset)
        return job_id

    def claim_active(self, dataset: str, job_id: str) -> bool:
        return bool(self.redis.set(self._active(dataset), job_id, nx=True))

    def active_job(self, dataset: str) -> str | None:
        value = self.redis.get(self._active(dataset))
        return value.decode() if value else None

    def start(self, job_id: str, model_version: str) -> bool:
        """Marks the job running; False if it no longer exists (forgotten with its dataset)."""
        now = time.time()
        return bool(self._start(keys=[self._job(job_id)], args=[RUNNING, now, model_version]))

    def plan(self, job_id: str, total: int, unchanged: int = 0) -> None:
        """The job's size is known: `total` items, of which `unchanged` need nothing."""
        self.redis.hset(self._job(job_id), mapping={"total": total, "unchanged": unchanged, "planned": 1})
        self.maybe_finish(job_id)

    def maybe_finish(self, job_id: str) -> str:
        keys = [*self.record_keys(job_id), self._active(self.dataset_of(job_id)), _OPEN]
        state = self._finish(keys=keys, args=[time.time(), job_id])
        return state.decode() if isinstance(state, bytes) else state

    def fail(self, job_id: str, error: str) -> None:
        self.redis.hset(self._job(job_id), mapping={"state": FAILED, "error": error, "finished_at": time.time()})
        self.redis.srem(_OPEN, job_id)
        active = self._active(self.dataset_of(job_id))
        if self.redis.get(active) == job_id.encode():
            self.redis.delete(active)

    def discard_if_reconcile(self, job_id: str) -> bool:
        """Forgets a periodic reconcile that found nothing to do, so job lists show
        work, not heartbeats."""
        dataset = self.dataset_of(job_id)
        keys = [*self.record_keys(job_id), self._active(dataset), f"vz:jobs:{dataset}", "vz:jobs", _OPEN]
        return bool(self._discard(keys=keys, args=[job_id]))

    def open_jobs(self) -> list[str]:
        """Jobs not finished yet."""
        return sorted(j.decode() for j in self.redis.smembers(_OPEN))

    def updated_at(self, job_id: str) -> float | None:
        """When the job last made progress; None once it is forgotten."""
        value = self.redis.hget(self._job(job_id), "updated_at")
        return float(value) if value is not None else None

    def dataset_of(self, job_id: str) -> str:
        value = self.redis.hget(self._job(job_id), "dataset")
        return value.decode() if value else ""

    def analysis(self, job_id: str, parameters: type[Message]) -> tuple[str, Message] | None:
        """An analysis job's model version and parameters; None once it is forgotten."""
        version, stored = self.redis.hmget(self._job(job_id), "model_version", "parameters")
        if stored is None:
            return None
        return (version or b"").decode(), parameters.FromString(stored)

    def findings(self, job_id: str) -> Iterator[tuple[bytes, bytes]]:
        """A job's findings as stored, a page at a time (never the whole hash in one reply)."""
        return self.redis.hscan_iter(self.findings_key(job_id), count=1000)

    def routing(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """The job's dataset ("" once forgotten) and the trace it was asked for in, if any."""
        dataset, trace = self.redis.hmget(self._job(job_id), "dataset", "trace")
        return (dataset.decode() if dataset else ""), (json.loads(trace) if trace else None)

    # -- reads -----------------------------------------------------------
    def get(self, job_id: str, max_failures: int = 1000) -> indexer_pb2.Job | None:
        base, done, skipped, failed, problems = self.record_keys(job_id)
        with self.redis.pipeline() as pipe:
            pipe.hgetall(base)
            pipe.scard(done)
            pipe.scard(skipped)
            pipe.hlen(failed)
            pipe.hscan(failed, count=max_failures)
            pipe.hlen(problems)
            pipe.hscan(problems, count=max_failures)
            fields, n_done, n_skipped, n_failed, (_, failed_items), n_problems, (_, problem_items) = pipe.execute()
        if not fields:
            return None
        parameters = fields.pop(b"parameters", None)
        f = {k.decode(): v.decode() for k, v in fields.items()}
        failures = [(k.decode(), v.decode()) for k, v in failed_items.items()]
        failures += [tuple(json.loads(v)) for v in problem_items.values()]
        unchanged = int(f.get("unchanged", 0))
        total, skipped = int(f.get("total", 0)), n_skipped + unchanged
        processed = n_done + n_failed + skipped
        created_at, started_at, finished_at = (float(f.get(k, 0)) for k in ("created_at", "started_at", "finished_at"))
        rate = throughput(processed, unchanged, started_at, finished_at)
        return indexer_pb2.Job(
            id=job_id, dataset=f["dataset"], kind=f.get("kind", ""), model_version=f.get("model_version", ""),
            state=JOB_STATE_ENUMS[f["state"]], total=total, done=n_done, failed=n_failed, skipped=skipped,
            objects=int(f.get("objects", 0)), annotation_errors=n_problems, error=f.get("error", ""),
            failures=[indexer_pb2.JobFailure(key=k, reason=r) for k, r in sorted(failures)[:max_failures]],
            throughput=rate,
            eta_seconds=(total - processed) / rate if rate > 0 and f["state"] not in FINISHED else 0.0,
            created_at=_timestamp(created_at), started_at=_timestamp(started_at), finished_at=_timestamp(finished_at),
            **({f["kind"]: ANALYSIS_PARAMETERS[f["kind"]].FromString(parameters)} if parameters is not None else {}),
        )

    def recent(self, dataset: str = "", limit: int = 50) -> list[indexer_pb2.Job]:
        index = f"vz:jobs:{dataset}" if dataset else "vz:jobs"
        ids = [i.decode() for i in self.redis.zrevrange(index, 0, max(limit, 1) - 1)]
        return [job for job in (self.get(i, max_failures=100) for i in ids) if job is not None]

    def latest(self, dataset: str) -> indexer_pb2.Job | None:
        jobs = self.recent(dataset, limit=1)
        return jobs[0] if jobs else None

    def latest_of_kind(self, dataset: str, kind: str,
                       accept: Callable[[indexer_pb2.Job], bool] = lambda job: True) -> indexer_pb2.Job | None:
        """The dataset's newest job of this kind (that `accept` takes)."""
        for job_id in (i.decode() for i in self.redis.zrevrange(f"vz:jobs:{dataset}", 0, -1)):
            if self.redis.hget(self._job(job_id), "kind") == kind.encode():
                job = self.get(job_id, max_failures=100)
                if job is not None and accept(job):
                    return job
        return None

    def _trim(self, dataset: str) -> None:
        old = self.redis.zrange(f"vz:jobs:{dataset}", 0, -self.history - 1)
        for job_id in (i.decode() for i in old):
            self.redis.delete(*self._all_keys(job_id))
            self.redis.zrem(f"vz:jobs:{dataset}", job_id)
            self.redis.zrem("vz:jobs", job_id)
            self.redis.srem(_OPEN, job_id)

    def of_dataset(self, dataset: str) -> list[str]:
        return [i.decode() for i in self.redis.zrange(f"vz:jobs:{dataset}", 0, -1)]

    def forget_dataset(self, dataset: str) -> None:
        for job_id in self.of_dataset(dataset):
            self.redis.delete(*self._all_keys(job_id))
            self.redis.zrem("vz:jobs", job_id)
            self.redis.srem(_OPEN, job_id)
        self.redis.delete(f"vz:jobs:{dataset}", self._active(dataset))
