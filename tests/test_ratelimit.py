"""Rate limits against real Redis: two gateway replicas share one key's budget and never
let it past its limit, and most requests are admitted without a Redis round trip."""

import asyncio

import redis.asyncio as redis

from services.gateway.ratelimit import RateLimiter


def admitted(fresh_redis, limit: int, requests: int, replicas: int = 2) -> tuple[int, int, list[int]]:
    """(admitted, Redis round trips, the waits of the refused) for requests made in turn
    through `replicas` limiters."""
    async def run():
        port = fresh_redis.connection_pool.connection_kwargs["port"]
        clients = [redis.Redis(port=port) for _ in range(replicas)]
        limiters = [RateLimiter(client, limit) for client in clients]
        trips = 0
        for limiter in limiters:
            take = limiter._take

            async def counted(*args, take=take):
                nonlocal trips
                trips += 1
                return await take(*args)
            limiter._take = counted
        waits = [await limiters[i % replicas].retry_after("key") for i in range(requests)]
        for client in clients:
            await client.aclose()
        return sum(w == 0 for w in waits), trips, [w for w in waits if w]
    return asyncio.run(run())


def test_a_small_limit_is_exact_across_replicas(fresh_redis):
    count, trips, waits = admitted(fresh_redis, limit=5, requests=9)
    assert count == 5 and all(1 <= w <= 60 for w in waits) and len(waits) == 4
    assert trips == 5 + 2, "under 128 a minute each request asks Redis, until each replica learns it is spent"


def test_a_large_limit_is_leased_and_never_exceeded(fresh_redis):
    count, trips, _ = admitted(fresh_redis, limit=640, requests=700)  # leases of 10
    assert 640 - 2 * 9 <= count <= 640
    assert trips <= 640 // 10 + 4, f"{trips} round trips for 700 requests"


def test_no_limit_asks_nothing(fresh_redis):
    assert admitted(fresh_redis, limit=0, requests=50) == (50, 0, [])
