"""The work ledger: every unit of an ingestion job (its scan, then its batches),
from planned to committed, kept in Redis beside the jobs.

Celery delivers a message at least once, can hold a dead worker's message for its
whole visibility timeout, and loses messages where Redis loses writes. So the
ledger, not the broker, says what remains to be done:

- Planned units wait in their job's to-do list. `take` hands them out round robin
  over jobs (a 20,000-image drop does not starve a 10-image one), keeping at most
  a window of units in flight (sent to the broker, or running).
- A worker claims a unit with a lease (a Redis key with a time to live) that it
  renews while it runs; another delivery of a unit that is running finds the lease
  and leaves it alone, so a live worker's unit never runs twice at the same time.
- A unit commits atomically with its results (manifest, current failures, job
  outcomes, the next units it plans). A unit cancelled meanwhile (its dataset
  deleted) commits nothing.
- `requeue_lost` puts units in flight that are neither queued nor leased (their
  worker died, their message was lost) back at the front of their job's list.

Unit ids are "scan" and "b<n>" for ingestion, "<kind>:plan" and "<kind>:<n>" for an
analysis job (services/indexer/analysis.py); a unit's payload is "" (a plan) or what it
works on as JSON.
"""

import json
import secrets
import time
from dataclasses import dataclass, field

import redis

SCAN_UNIT = "scan"
_PREFIX = "vz:work:"
_READY = "vz:work:ready"  # jobs with units to do, by turn: the least recently served first
# Counts turns. A job that gets units takes the next turn, behind every job already
# waiting: arriving ahead of them, a stream of new jobs (a reconciler's idle scans of many
# datasets) could starve a job's remaining units.
_TURN = "vz:work:turn"
_INFLIGHT = "vz:work:inflight"  # "<job>/<unit>" -> when it was sent or claimed
_WORKERS = "vz:work:workers"  # worker name -> "<slots> <expires at>"

# KEYS: work hash, to-do list, ready zset, turn counter. ARGV: job, guard unit ('' for none), then unit,
# payload pairs.
# Adds units not already known; with a guard, only while the guard unit is still wanted.
_ADD = """
if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 0 end
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i]); added = added + 1
  end
end
if added > 0 then redis.call('ZADD', KEYS[3], 'NX', redis.call('INCR', KEYS[4]), ARGV[1]) end
return 1
"""

# KEYS: ready zset, in-flight hash, turn counter. ARGV: room, now, key prefix.
# Returns job, unit, job, unit, ...: one unit from the job served least recently, then the next job's.
_TAKE = """
local room = tonumber(ARGV[1]) - redis.call('HLEN', KEYS[2])
local out = {}
while room > 0 do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #head == 0 then break end
  local job = head[1]
  local todo = ARGV[3] .. job .. ':todo'
  local unit = redis.call('LPOP', todo)
  if unit then
    redis.call('HSET', KEYS[2], job .. '/' .. unit, ARGV[2])
    out[#out + 1] = job; out[#out + 1] = unit
    room = room - 1
  end
  if redis.call('LLEN', todo) == 0 then redis.call('ZREM', KEYS[1], job)
  else redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[3]), job) end
end
return out
"""

# KEYS: work hash, lease, in-flight hash, to-do list. ARGV: unit, token, lease ms, in-flight field, now.
# Returns {0} (committed or cancelled: nothing to do), {1} (another worker holds it) or {2, payload}.
_CLAIM = """
local payload = redis.call('HGET', KEYS[1], ARGV[1])
if not payload then redis.call('HDEL', KEYS[3], ARGV[4]); return {0} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {1} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('LREM', KEYS[4], 0, ARGV[1])
return {2, payload}
"""

# KEYS: lease, work hash. ARGV: token, lease ms, unit. 1: still ours; 0: cancelled or taken over.
# A lease that lapsed while Redis was away is taken back if nobody else took it. A cancelled
# unit's lease is still extended: its holder may be writing, and the deletion waits for it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]); return redis.call('HEXISTS', KEYS[2], ARGV[3])
end
if not holder and redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 1
end
return 0
"""

# KEYS: lease. ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: work hash, lease, in-flight hash, to-do list, ready zset, job hash, done set, skipped set,
#       failed hash, problems hash, manifest hash, current-failures hash, findings hash, turn counter
# ARGV: unit, token, in-flight field, now, job id, results as JSON (see Results)
# Returns 1 (committed), 0 (cancelled: nothing written) or -1 (another worker holds the unit now).
_COMMIT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
  return 0
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return -1 end
local r = cjson.decode(ARGV[6])
for _, kv in ipairs(r.manifest) do redis.call('HSET', KEYS[11], kv[1], kv[2]) end
for _, k in ipairs(r.unmanifest) do redis.call('HDEL', KEYS[11], k) end
for _, kv in ipairs(r.failing) do redis.call('HSET', KEYS[12], kv[1], kv[2]) end
for _, k in ipairs(r.cleared) do redis.call('HDEL', KEYS[12], k) end
for _, o in ipairs(r.outcomes) do
  local key, outcome = o[1], o[2]
  if outcome == 'done' then
    redis.call('SREM', KEYS[8], key); redis.call('HDEL', KEYS[9], key)
    if redis.call('SADD', KEYS[7], key) == 1 then redis.call('HINCRBY', KEYS[6], 'objects', tonumber(o[4])) end
  elseif outcome == 'skipped' then
    -- A redelivered batch finds its own work unchanged: it stays done.
    if redis.call('SISMEMBER', KEYS[7], key) == 0 then
      redis.call('HDEL', KEYS[9], key); redis.call('SADD', KEYS[8], key)
    end
  else
    redis.call('SREM', KEYS[7], key); redis.call('SREM', KEYS[8], key)
    redis.call('HSET', KEYS[9], key, o[3])
  end
end
for _, p in ipairs(r.problems) do redis.call('HSET', KEYS[10], p[1] .. '\\0' .. p[2], cjson.encode(p)) end
for _, f in ipairs(r.findings) do redis.call('HSET', KEYS[13], f[1], f[2]) end
if r.plan then
  redis.call('HSET', KEYS[6], 'total', r.plan[1], 'unchanged', r.plan[2], 'planned', 1)
end
local added = 0
for _, u in ipairs(r.units) do
  if redis.call('HSETNX', KEYS[1], u[1], u[2]) == 1 then redis.call('RPUSH', KEYS[4], u[1]); added = added + 1 end
end
if added > 0 then redis.call('ZADD', KEYS[5], 'NX', redis.call('INCR', KEYS[14]), ARGV[5]) end
redis.call('HSET', KEYS[6], 'updated_at', ARGV[4])
if redis.call('HGET', KEYS[6], 'state') == 'queued' then redis.call('HSET', KEYS[6], 'state', 'running') end
redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[3], ARGV[3]); redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: in-flight hash, lease, work hash, to-do list, ready zset. ARGV: field, unit, job.
# A unit in flight that nobody holds goes back to the front of its job's list.
_REQUEUE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  redis.call('LPUSH', KEYS[4], ARGV[2]); redis.call('ZADD', KEYS[5], 0, ARGV[3])
end
return 1
"""

# KEYS: ready zset, in-flight hash. ARGV: key prefix, then job ids. Drops every unit of these jobs
# and returns the in-flight ones (leases stay with their holders, whose commits now do nothing).
_CANCEL = """
local cancelled, dropped = {}, {}
for i = 2, #ARGV do
  local job = ARGV[i]
  cancelled[job] = true
  redis.call('DEL', ARGV[1] .. job, ARGV[1] .. job .. ':todo')
  redis.call('ZREM', KEYS[1], job)
end
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  local job = string.match(f, '^([^/]+)/')
  if job and cancelled[job] then redis.call('HDEL', KEYS[2], f); dropped[#dropped + 1] = f end
end
return dropped
"""


@dataclass
class Results:
    """What a unit writes when it commits; everything optional. `version` names the model
    version whose manifest and current failures the batch writes."""

    manifest: list[tuple[str, str]] = field(default_factory=list)  # key -> manifest entry (JSON)
    unmanifest: list[str] = field(default_factory=list)
    failing: list[tuple[str, str]] = field(default_factory=list)  # key -> reason it fails now
    cleared: list[str] = field(default_factory=list)  # keys that no longer fail
    outcomes: list[tuple[str, str, str, int]] = field(default_factory=list)  # key, outcome, reason, objects
    problems: list[tuple[str, str]] = field(default_factory=list)  # unusable annotations: key, reason
    plan: tuple[int, int] | None = None  # a scan's (total, unchanged)
    units: list[tuple[str, str]] = field(default_factory=list)  # units planned: id, payload
    findings: list[tuple[str, str]] = field(default_factory=list)  # an analysis batch's: name -> JSON
    version: str = ""

    def json(self) -> str:
        # cjson decodes [] and {} alike: lists of pairs keep every field a list.
        return json.dumps({
            "manifest": [list(p) for p in self.manifest], "unmanifest": self.unmanifest,
            "failing": [list(p) for p in self.failing], "cleared": self.cleared,
            "outcomes": [list(o) for o in self.outcomes], "problems": [list(p) for p in self.problems],
            "plan": list(self.plan) if self.plan else False, "units": [list(u) for u in self.units],
            "findings": [list(f) for f in self.findings],
        }, ensure_ascii=False)


@dataclass(frozen=True)
class CommitKeys:
    """Where a commit writes, beyond the ledger: the job's records and the catalog's."""

    job: str
    done: str
    skipped: str
    failed: str
    problems: str
    manifest: str
    failing: str
    findings: str


class Claim:
    """What `claim` found."""

    GONE, BUSY, CLAIMED = 0, 1, 2


def field_of(job_id: str, unit: str) -> str:
    return f"{job_id}/{unit}"


def batch_units(batches: list[list], prefix: str = "b") -> list[tuple[str, str]]:
    return [(f"{prefix}{i}", json.dumps(items, ensure_ascii=False)) for i, items in enumerate(batches)]


def batch_keys(payload: str) -> list[str]:
    return json.loads(payload)


class WorkLedger:
    def __init__(self, client: redis.Redis, lease_s: float):
        self.redis = client
        self.lease_ms = int(lease_s * 1000)
        self._add = client.register_script(_ADD)
        self._take = client.register_script(_TAKE)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._commit = client.register_script(_COMMIT)
        self._requeue = client.register_script(_REQUEUE)
        self._cancel = client.register_script(_CANCEL)

    # -- keys ------------------------------------------------------------
    @staticmethod
    def _work(job_id: str) -> str:
        return f"{_PREFIX}{job_id}"

    @staticmethod
    def _todo(job_id: str) -> str:
        return f"{_PREFIX}{job_id}:todo"

    @staticmethod
    def _lease(job_id: str, unit: str) -> str:
        return f"{_PREFIX}lease:{field_of(job_id, unit)}"

    # -- planning and dispatch --------------------------------------------
    def add(self, job_id: str, units: list[tuple[str, str]], guard: str = "") -> bool:
        """Plans units (those already known are left alone); with `guard`, only while that
        unit of the job is still wanted. False if it was not."""
        args = [job_id, guard]
        for unit, payload in units:
            args += [unit, payload]
        return bool(self._add(keys=[self._work(job_id), self._todo(job_id), _READY, _TURN], args=args))

    def take(self, window: int) -> list[tuple[str, str]]:
        """Units to send now, (job, unit) each, so that at most `window` are in flight."""
        flat = self._take(keys=[_READY, _INFLIGHT, _TURN], args=[window, time.time(), _PREFIX])
        flat = [v.decode() for v in flat]
        return list(zip(flat[0::2], flat[1::2]))

    def backlog(self) -> int:
        """Units planned and not yet sent."""
        jobs = [j.decode() for j in self.redis.zrange(_READY, 0, -1)]
        with self.redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.llen(self._todo(job))
            return sum(pipe.execute()) if jobs else 0

    def in_flight(self) -> dict[str, float]:
        return {k.decode(): float(v) for k, v in self.redis.hgetall(_INFLIGHT).items()}

    # -- running a unit ----------------------------------------------------
    @staticmethod
    def new_token() -> str:
        return secrets.token_hex(8)

    def claim(self, job_id: str, unit: str, token: str) -> tuple[int, str]:
        """(Claim.CLAIMED, payload) with the lease taken; (Claim.GONE, "") if the unit was
        committed or cancelled; (Claim.BUSY, "") if another worker holds it."""
        reply = self._claim(keys=[self._work(job_id), self._lease(job_id, unit), _INFLIGHT, self._todo(job_id)],
                            args=[unit, token, self.lease_ms, field_of(job_id, unit), time.time()])
        status = int(reply[0])
        return status, reply[1].decode() if status == Claim.CLAIMED else ""

    def renew(self, job_id: str, unit: str, token: str) -> bool:
        """Extends the lease; False once the unit was cancelled or another worker took it."""
        return bool(self._renew(keys=[self._lease(job_id, unit), self._work(job_id)],
                                args=[token, self.lease_ms, unit]))

    def release(self, job_id: str, unit: str, token: str) -> None:
        self._release(keys=[self._lease(job_id, unit)], args=[token])

    def wanted(self, job_id: str, unit: str) -> bool:
        return bool(self.redis.hexists(self._work(job_id), unit))

    def commit(self, job_id: str, unit: str, token: str, keys: CommitKeys, results: Results) -> int:
        """Writes the unit's results and retires it, atomically: 1 once done, 0 if the unit
        was cancelled (nothing written), -1 if another worker holds it now."""
        return int(self._commit(
            keys=[self._work(job_id), self._lease(job_id, unit), _INFLIGHT, self._todo(job_id), _READY,
                  keys.job, keys.done, keys.skipped, keys.failed, keys.problems, keys.manifest, keys.failing,
                  keys.findings, _TURN],
            args=[unit, token, field_of(job_id, unit), time.time(), job_id, results.json()]))

    def units_left(self, job_id: str) -> int:
        return self.redis.hlen(self._work(job_id))

    # -- recovery and cancellation -----------------------------------------
    def unaccounted(self, queued: set[str]) -> list[str]:
        """Units in flight that are neither in the broker's queue (`queued`, as job/unit)
        nor held by a worker."""
        fields = [f for f in self.in_flight() if f not in queued]
        held = set(self.held(fields))
        return [f for f in fields if f not in held]

    def requeue(self, field_name: str) -> bool:
        """Puts a unit in flight that nobody holds back at the front of its job's list."""
        job_id, unit = field_name.split("/", 1)
        return bool(self._requeue(keys=[_INFLIGHT, self._lease(job_id, unit), self._work(job_id),
                                        self._todo(job_id), _READY], args=[field_name, unit, job_id]))

    def cancel(self, job_ids: list[str]) -> list[str]:
        """Drops every unit of these jobs, planned, sent or running; returns those that
        were in flight (job/unit), whose workers may still hold them."""
        if not job_ids:
            return []
        return [f.decode() for f in self._cancel(keys=[_READY, _INFLIGHT], args=[_PREFIX, *job_ids])]

    def held(self, fields: list[str]) -> list[str]:
        """Those of these units (job/unit) that a worker holds now."""
        if not fields:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for f in fields:
                pipe.exists(f"{_PREFIX}lease:{f}")
            return [f for f, h in zip(fields, pipe.execute()) if h]

    # -- workers -----------------------------------------------------------
    def register_worker(self, name: str, slots: int, ttl_s: float) -> None:
        self.redis.hset(_WORKERS, name, f"{slots} {time.time() + ttl_s}")

    def unregister_worker(self, name: str) -> None:
        self.redis.hdel(_WORKERS, name)

    def worker_slots(self) -> int:
        """Tasks the live workers can run at once (dead workers' entries are dropped)."""
        now, slots, dead = time.time(), 0, []
        for name, value in self.redis.hgetall(_WORKERS).items():
            count, expires = value.decode().split()
            if float(expires) < now:
                dead.append(name)
            else:
                slots += int(count)
        if dead:
            self.redis.hdel(_WORKERS, *dead)
        return slots
