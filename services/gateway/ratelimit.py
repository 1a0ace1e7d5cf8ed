"""Per-key request limits in Redis: a counter per key per minute, shared by
every gateway replica."""

import time

import redis.asyncio as redis


class RateLimiter:
    def __init__(self, client: redis.Redis, per_minute: int):
        self.redis = client
        self.per_minute = per_minute

    async def retry_after(self, who: str, per_minute: int | None = None) -> int:
        """0 if the call may go ahead, else the seconds until it may; per_minute
        overrides the default limit for this caller."""
        limit = self.per_minute if per_minute is None else per_minute
        if limit <= 0:
            return 0
        now = time.time()
        window = int(now // 60)
        key = f"vz:ratelimit:{who}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(key).expire(key, 120).execute()
        if count <= limit:
            return 0
        return max(1, int((window + 1) * 60 - now))
