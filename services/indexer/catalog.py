"""What the indexer knows about each dataset, kept in Redis beside the jobs.

- the dataset registry and each dataset's settings;
- the manifest: per model version, each indexed key's storage signature and
  content sha256, which is how a rescan knows what changed (written by the work
  ledger's commit, with the batch's other results);
- the parsed annotations, per image key;
- the files that currently fail, with their reasons.

Everything here can be rebuilt from the bucket: losing it costs one full
re-index, never data (vectors are upserted under deterministic ids).
"""

import json
import time
from dataclasses import dataclass

import redis

from services.common.vectors import SCHEMA_REVISION
from services.indexer.annotations import Annotation
from vizsearch.names import check_dataset_name


@dataclass(frozen=True)
class ManifestEntry:
    signature: str  # size, ETag and modification time as storage reports them: a change detector only
    sha256: str  # of the content: decides whether a changed object really needs embedding again
    annotations: str  # fingerprint of its boxes

    def to_json(self) -> str:
        return json.dumps([self.signature, self.sha256, self.annotations])


@dataclass(frozen=True)
class DatasetConfig:
    box_margin: float


class Catalog:
    def __init__(self, client: redis.Redis, default_box_margin: float):
        self.redis = client
        self.default_box_margin = default_box_margin

    # -- the registry ----------------------------------------------------
    def register(self, name: str, config: DatasetConfig | None = None, explicit: bool = False) -> bool:
        """Adds a dataset; True if it is new. A dataset deleted by its owner is not brought
        back by finding its prefix again, only explicitly (explicit=True)."""
        check_dataset_name(name)
        if not explicit and self.redis.sismember("vz:dataset-tombstones", name):
            return False
        if explicit:
            self.redis.srem("vz:dataset-tombstones", name)
        added = self.redis.sadd("vz:datasets", name) == 1
        fields = {"created_at": time.time()} if added else {}
        if config is not None:
            fields["box_margin"] = config.box_margin
        if fields:
            self.redis.hset(f"vz:dataset:{name}", mapping=fields)
        return added

    def names(self) -> list[str]:
        return sorted(n.decode() for n in self.redis.smembers("vz:datasets"))

    def exists(self, name: str) -> bool:
        return bool(self.redis.sismember("vz:datasets", name))

    def config(self, name: str) -> DatasetConfig:
        margin = self.redis.hget(f"vz:dataset:{name}", "box_margin")
        return DatasetConfig(box_margin=float(margin) if margin is not None else self.default_box_margin)

    def remove(self, name: str) -> None:
        """Forgets the dataset and everything known about it, and keeps it from being rediscovered."""
        with self.redis.pipeline() as pipe:
            pipe.srem("vz:datasets", name)
            pipe.sadd("vz:dataset-tombstones", name)
            pipe.zadd("vz:datasets-deleted", {name: time.time()})
            pipe.delete(f"vz:dataset:{name}", f"vz:ann:{name}", f"vz:unsettled:{name}")
            pipe.execute()
        for pattern in (f"vz:manifest:*:{name}", f"vz:failed:*:{name}"):
            for key in self.redis.scan_iter(match=pattern):
                self.redis.delete(key)

    def recently_deleted(self, within_s: float) -> list[str]:
        """Datasets deleted in the last `within_s` seconds and not created again (older
        deletions are forgotten)."""
        since = time.time() - within_s
        self.redis.zremrangebyscore("vz:datasets-deleted", "-inf", since)
        names = [n.decode() for n in self.redis.zrangebyscore("vz:datasets-deleted", since, "+inf")]
        return [n for n in names if not self.exists(n)]

    def unsettled_since(self, name: str, now: float) -> float:
        """When the reconciler first found the dataset still being uploaded."""
        key = f"vz:unsettled:{name}"
        self.redis.set(key, now, nx=True, ex=86400)
        return float(self.redis.get(key) or now)

    def clear_unsettled(self, name: str) -> None:
        self.redis.delete(f"vz:unsettled:{name}")

    # -- the manifest ----------------------------------------------------
    @staticmethod
    def manifest_key(version: str, dataset: str) -> str:
        # Per collection generation: a new model or schema revision indexes everything anew.
        return f"vz:manifest:{version}:r{SCHEMA_REVISION}:{dataset}"

    def manifest(self, version: str, dataset: str) -> dict[str, ManifestEntry]:
        raw = self.redis.hgetall(self.manifest_key(version, dataset))
        return {k.decode(): ManifestEntry(*json.loads(v)) for k, v in raw.items()}

    def manifest_entries(self, version: str, dataset: str, keys: list[str]) -> dict[str, ManifestEntry]:
        if not keys:
            return {}
        values = self.redis.hmget(self.manifest_key(version, dataset), keys)
        return {k: ManifestEntry(*json.loads(v)) for k, v in zip(keys, values) if v is not None}

    # -- annotations -----------------------------------------------------
    def set_annotations(self, dataset: str, boxes: dict[str, list[Annotation]]) -> None:
        """Replaces the dataset's parsed annotations as a whole."""
        key = f"vz:ann:{dataset}"
        with self.redis.pipeline() as pipe:  # MULTI: readers see the old set or the new one
            pipe.delete(key)
            if boxes:
                pipe.hset(key, mapping={k: json.dumps([a.to_json() for a in v]) for k, v in boxes.items()})
            pipe.execute()

    def annotations(self, dataset: str, keys: list[str]) -> dict[str, list[Annotation]]:
        if not keys:
            return {}
        values = self.redis.hmget(f"vz:ann:{dataset}", keys)
        return {k: [Annotation.from_json(a) for a in json.loads(v)] for k, v in zip(keys, values) if v is not None}

    # -- current failures ------------------------------------------------
    @staticmethod
    def failed_key(version: str, dataset: str) -> str:
        """Keys that fail now, with their reasons (written by the work ledger's commit)."""
        return f"vz:failed:{version}:r{SCHEMA_REVISION}:{dataset}"

    def failed_count(self, version: str, dataset: str) -> int:
        return self.redis.hlen(self.failed_key(version, dataset))
