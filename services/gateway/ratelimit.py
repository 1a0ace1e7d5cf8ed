"""Per-key request limits: a budget per key per minute, shared by every gateway replica
through a counter in Redis.

A request must not wait on Redis: a replica takes the key's budget in small leases (one
INCRBY for up to `lease` requests) and spends them in memory, so most requests make no
round trip, and a replica that found the minute's budget spent refuses without asking
again until the next minute. Leases are at most 1/64 of the limit (one request for limits
under 128), so a key is never let past its limit; what a replica leased and did not spend
before the minute ended is lost, which can refuse a key a few requests early (at most
`lease - 1` per replica a minute: 8 of 600 at the default).
"""

import time
from dataclasses import dataclass

import redis.asyncio as redis

MAX_LEASE = 32


@dataclass
class _Lease:
    window: int
    left: int
    spent: bool = False  # the window's whole budget is gone: refuse without asking again


class RateLimiter:
    def __init__(self, client: redis.Redis, per_minute: int):
        self.redis = client
        self.per_minute = per_minute
        self._leases: dict[str, _Lease] = {}

    async def retry_after(self, who: str, per_minute: int | None = None) -> int:
        """0 if the call may go ahead, else the seconds until it may; per_minute
        overrides the default limit for this caller."""
        limit = self.per_minute if per_minute is None else per_minute
        if limit <= 0:
            return 0
        now = time.time()
        window = int(now // 60)
        lease = self._leases.get(who)
        if lease is None or lease.window != window:
            if len(self._leases) > 10_000:  # callers of past minutes: forget them
                self._leases = {k: v for k, v in self._leases.items() if v.window == window}
            lease = self._leases[who] = _Lease(window, 0)
        if lease.left == 0 and not lease.spent:
            got = await self._take(who, window, limit)
            lease.left += got  # +=: a concurrent request may have added some meanwhile
            lease.spent = got == 0
        if lease.left == 0:
            return max(1, int((window + 1) * 60 - now))
        lease.left -= 1
        return 0

    async def _take(self, who: str, window: int, limit: int) -> int:
        """Leases up to limit/64 of the window's budget (at least one request); returns how
        many requests it got, 0 when the budget is spent."""
        size = max(1, min(MAX_LEASE, limit // 64))
        key = f"vz:ratelimit:{who}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incrby(key, size).expire(key, 120).execute()
        return max(0, min(size, limit - (count - size)))
