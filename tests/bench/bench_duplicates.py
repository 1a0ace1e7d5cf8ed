"""Duplicate detection: how the near-duplicate threshold was chosen, and what the
duplicates job finds at it. `make bench-duplicates` (ORIGINALS=100 by default).

Brings up the whole stack on ports of its own, serving the demo CLIP, and indexes
generated demo scenes: ORIGINALS of them each with an exact copy (the same bytes under
another key) and near copies (re-encoded at JPEG quality 40, resized to half, cropped
by 5% on every side, and all three milder at once), plus as many distinct scenes again.
Then prints:
- for thresholds from 0.80 to 0.995: the precision and recall of "cosine at or above the
  threshold" over every pair of images (a pair is true when both come from one scene),
  from the embeddings the stack serves, and the threshold with the best F1;
- per kind of copy, the share found at that threshold;
- a duplicates job at that threshold (or --threshold): its time, and the precision and
  recall of its groups (two images in one group count as a found pair);
- with --scale N1,N2,...: a duplicates job's time over a dataset grown to each size with
  synthetic CLIP-like vectors (tests/bench/bench_query.py's), to show how it grows.
"""

import argparse
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

import redis

from model import demo_data
from services.common.vectors import VectorSettings, VectorStore
from services.indexer.catalog import Catalog
from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests.bench.bench_query import ClusteredVectors, fill
from vizsearch.client import Client

PORT_SHIFT = 12_000
DATASET = "dups"
THRESHOLDS = [0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995]


def _jpeg(picture: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _crop(picture: Image.Image, fraction: float) -> Image.Image:
    dx, dy = round(picture.width * fraction), round(picture.height * fraction)
    return picture.crop((dx, dy, picture.width - dx, picture.height - dy))


def _scale(picture: Image.Image, factor: float) -> Image.Image:
    return picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.Resampling.BILINEAR)


# kind -> what makes the copy from the original's decoded pixels (the exact copy is the file itself)
VARIANTS = {
    "jpeg-q40": lambda p: _jpeg(p, 40),
    "half-size": lambda p: _jpeg(_scale(p, 0.5), 85),
    "crop-5%": lambda p: _jpeg(_crop(p, 0.05), 85),
    "mixed": lambda p: _jpeg(_scale(_crop(p, 0.03), 0.75), 60),
}


def build(folder: Path, originals: int) -> dict[str, str]:
    """Writes the dataset's files; returns key -> the scene it comes from."""
    demo = folder / "demo"
    demo_data.generate(demo, originals * 2, seed=11)
    files = folder / DATASET
    origin = {}
    for index, path in enumerate(sorted((demo / "images").glob("*.jpg"))):
        data = path.read_bytes()
        key = f"scenes/{path.name}"
        (files / "scenes").mkdir(parents=True, exist_ok=True)
        (files / key).write_bytes(data)
        origin[key] = path.stem
        if index >= originals:
            continue  # a distinct scene: no copy
        copies = {"exact": data}
        with Image.open(io.BytesIO(data)) as picture:
            picture = picture.convert("RGB")
            copies |= {kind: make(picture) for kind, make in VARIANTS.items()}
        for kind, copy in copies.items():
            copy_key = f"copies/{kind}/{path.name}"
            (files / copy_key).parent.mkdir(parents=True, exist_ok=True)
            (files / copy_key).write_bytes(copy)
            origin[copy_key] = path.stem
    return origin


def embeddings(client: Client, keys: list[str]) -> np.ndarray:
    rows = []
    for start in range(0, len(keys), 32):
        rows += client.embed_images([(DATASET, key) for key in keys[start:start + 32]]).vectors
    return np.asarray(rows, dtype=np.float32)


def sweep(keys: list[str], origin: dict[str, str], vectors: np.ndarray) -> float:
    similarity = vectors @ vectors.T
    upper = np.triu_indices(len(keys), k=1)
    scores = similarity[upper]
    same = np.array([origin[keys[i]] == origin[keys[j]] for i, j in zip(*upper)])
    print(f"\n{same.sum()} true pairs among {len(scores):,} pairs of {len(keys)} images")
    print(f"  distinct scenes: highest cosine {scores[~same].max():.4f}, 99.9th percentile "
          f"{np.percentile(scores[~same], 99.9):.4f}; copies: lowest {scores[same].min():.4f}")
    print(f"{'threshold':>10} {'precision':>10} {'recall':>8} {'F1':>6}")
    best, best_f1 = THRESHOLDS[0], -1.0
    for threshold in THRESHOLDS:
        found = scores >= threshold
        precision = (found & same).sum() / max(found.sum(), 1)
        recall = (found & same).sum() / same.sum()
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        print(f"{threshold:10.3f} {precision:10.3f} {recall:8.3f} {f1:6.3f}")
        if f1 >= best_f1:  # ties go to the higher threshold: fewer surprises on real data
            best, best_f1 = threshold, f1
    index = {key: i for i, key in enumerate(keys)}
    print(f"\nat {best}: share of copies found, by kind")
    for kind in ["exact", *VARIANTS]:
        copies = [k for k in keys if k.startswith(f"copies/{kind}/")]
        hits = [similarity[index[k], index["scenes/" + Path(k).name]] >= best for k in copies]
        print(f"  {kind:10} {np.mean(hits):.3f}")
    return best


def every_page(read: Callable[[int], object], items: Callable[[object], tuple[list, int]]) -> list:
    """All the results of a paged call: read(offset) is a page, items(page) its (results, total)."""
    found = []
    while True:
        results, total = items(read(len(found)))
        found += results
        if not results or len(found) >= total:
            return found


def group_quality(client: Client, origin: dict[str, str], threshold: float) -> None:
    started = time.monotonic()
    job = client.wait(client.find_duplicates(DATASET, threshold=threshold).id, poll_s=0.2)
    elapsed = time.monotonic() - started
    groups = every_page(lambda offset: client.duplicates(DATASET, job.id, limit=1000, offset=offset),
                        lambda page: (page.groups, page.total_groups))
    found = {tuple(sorted((a.key, b.key))) for g in groups for a, b in combinations(g.images, 2)}
    true = {tuple(sorted(pair)) for pair in combinations(origin, 2) if origin[pair[0]] == origin[pair[1]]}
    precision = len(found & true) / max(len(found), 1)
    print(f"\nduplicates job at {threshold}: {job.state}, {job.total} images in {elapsed:.1f} s "
          f"({job.total / elapsed:.0f} images/s, from the request to the end)")
    print(f"  {len(groups)} groups ({sum(g.exact for g in groups)} exact), "
          f"{sum(len(g.images) for g in groups)} images in them")
    print(f"  pairs: precision {precision:.3f}, recall {len(found & true) / len(true):.3f}")


def scaling(client: Client, settings: StackSettings, sizes: list[int], threshold: float) -> None:
    """A duplicates job's time as one dataset grows through `sizes`."""
    model = client.model()
    vectors = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{settings.milvus_port}"))
    with redis.Redis(port=settings.redis_port) as catalog_redis:
        Catalog(catalog_redis, default_box_margin=0.1).register("scale", explicit=True)
    source = ClusteredVectors(model.dimension)
    print(f"\nscaling, synthetic {model.dimension}-d vectors, threshold {threshold}:")
    print(f"{'images':>9} {'job s':>7} {'images/s':>9} {'groups':>7}")
    stored = 0
    try:
        for size in sizes:
            fill(vectors, model.version, source, size - stored, dataset="scale", first=stored)
            stored = size
            started = time.monotonic()
            job = client.wait(client.find_duplicates("scale", threshold=threshold).id, poll_s=0.2)
            elapsed = time.monotonic() - started
            found = client.duplicates("scale", job.id, limit=1)
            print(f"{job.total:9d} {elapsed:7.1f} {job.total / elapsed:9.0f} {found.total_groups:7d}", flush=True)
    finally:
        vectors.close()


@contextmanager
def demo_stack() -> Iterator[tuple[StackSettings, Path]]:
    """The whole stack on the benchmarks' ports, serving the demo CLIP, without the reconciler
    (a benchmark scans when it is ready), and a run directory for its files."""
    with tempfile.TemporaryDirectory() as run_dir:
        settings = StackSettings(run_dir=Path(run_dir), reconcile_interval_s=0, rate_limit_per_minute=0,
                                 **StackSettings.shifted_ports(PORT_SHIFT))
        stack = Stack(settings)
        try:
            print("starting the stack ...", flush=True)
            stack.up(log=lambda line: None)
            yield settings, Path(run_dir)
        finally:
            stack.down(log=lambda line: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=int, default=100, help="scenes with copies (as many again without)")
    parser.add_argument("--threshold", type=float, help="run the job at this instead of the best F1's")
    parser.add_argument("--scale", type=lambda text: [int(n) for n in text.split(",")], default=[],
                        help="dataset sizes to time a job at, ascending (say 20000,50000,100000)")
    args = parser.parse_args()
    with demo_stack() as (settings, run_dir):
        origin = build(run_dir, args.originals)
        with Client(f"http://127.0.0.1:{settings.gateway_http_port}", timeout_s=300) as client:
            client.upload(run_dir / DATASET, DATASET)
            job = client.wait(client.scan(DATASET).id)
            print(f"indexed {job.done} images ({job.state})", flush=True)
            keys = sorted(origin)
            best = sweep(keys, origin, embeddings(client, keys))
            group_quality(client, origin, args.threshold or best)
            if args.scale:
                scaling(client, settings, args.scale, args.threshold or best)


if __name__ == "__main__":
    main()
