"""A map job's time: `make bench-map` (POINTS=100000 by default).

Brings up the whole stack on ports of its own, serving the demo CLIP, fills a dataset with
POINTS synthetic CLIP-like vectors (tests/bench/bench_query.py's, at the model's dimension),
and times a map job of its images from the request to the end, then reading its points.
"""

import argparse
import time

import redis

from services.common.vectors import VectorSettings, VectorStore
from services.indexer.catalog import Catalog
from tests.bench.bench_duplicates import demo_stack
from tests.bench.bench_query import ClusteredVectors, fill
from vizsearch.client import Client

DATASET = "map-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    with demo_stack() as (settings, _):
        with Client(f"http://127.0.0.1:{settings.gateway_http_port}", timeout_s=600) as client:
            model = client.model()
            vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{settings.milvus_port}"))
            try:
                vectors.ensure_collections(model.version, model.dimension)
                with redis.Redis(port=settings.redis_port) as catalog_redis:
                    Catalog(catalog_redis, default_box_margin=0.1).register(DATASET, explicit=True)
                fill(vectors, model.version, ClusteredVectors(model.dimension), args.points, dataset=DATASET)
            finally:
                vectors.close()
            print(f"{args.points:,} synthetic {model.dimension}-d vectors indexed; making the map ...", flush=True)
            started = time.monotonic()
            job = client.wait(client.make_map(DATASET).id, poll_s=0.5)
            elapsed = time.monotonic() - started
            started = time.monotonic()
            shown = client.map(DATASET)
            read = time.monotonic() - started
    print(f"map job: {job.state}, {job.total:,} points in {elapsed:.1f} s from the request to the end "
          f"(reading the vectors, UMAP, storing the points)")
    print(f"first read of the map: {read:.2f} s for {len(shown.points):,} of {shown.total_points:,} points "
          f"(the indexer builds them from Redis once, then keeps them)")


if __name__ == "__main__":
    main()
