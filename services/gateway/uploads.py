"""Files uploaded through the gateway, and what it knows of them: for each dataset, each
key's content hash (sha256, computed as the bytes passed through) and the storage
signature the upload left. A client asks which of its files differ before sending any:
a file whose recorded hash equals its own, and whose stored object still has the signature
the upload left, is unchanged. No ETag is taken for a hash (a multipart upload's is not)."""

import json

import redis.asyncio as redis


class UploadLedger:
    def __init__(self, client: redis.Redis):
        self.redis = client

    @staticmethod
    def _key(dataset: str) -> str:
        return f"vz:uploads:{dataset}"

    async def recorded(self, dataset: str, keys: list[str]) -> dict[str, tuple[str, str]]:
        """key -> (sha256, storage signature), for the keys uploaded through the gateway."""
        if not keys:
            return {}
        values = await self.redis.hmget(self._key(dataset), keys)
        return {k: tuple(json.loads(v)) for k, v in zip(keys, values) if v is not None}

    async def record(self, dataset: str, key: str, sha256: str, signature: str) -> None:
        await self.redis.hset(self._key(dataset), key, json.dumps([sha256, signature]))

    async def forget(self, dataset: str) -> None:
        await self.redis.delete(self._key(dataset))
