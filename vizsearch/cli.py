"""The `vizsearch` command line.

    vizsearch search "a bus at night" [--dataset D] [--top-k 10] [--json]
    vizsearch search --image photo.jpg [--box x1,y1,x2,y2]
    vizsearch ingest FOLDER --dataset NAME   upload a folder and follow its indexing
    vizsearch datasets                       list datasets with their counts
    vizsearch jobs [--dataset NAME]          recent ingestion jobs
    vizsearch demo-data --out DIR [--images N] [--seed S]   a generated street-scene dataset

The gateway is VIZSEARCH_URL (default http://127.0.0.1:8080) with the key in
VIZSEARCH_API_KEY; `ingest` uploads with the same VIZSEARCH_S3_* variables as
the services.
"""

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tqdm import tqdm

from services.common.config import StorageSettings
from services.common.storage import ObjectStore, object_name
from vizsearch.names import InvalidDatasetName, check_dataset_name
from vizsearch.client import ApiError, Client
from vizsearch.models import Job, SearchResponse

FINISHED = {"succeeded", "completed_with_failures", "failed"}
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                 ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif",
                 ".json": "application/json"}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def upload(store: ObjectStore, folder: Path, dataset: str, threads: int,
           include: Callable[[str], bool] = lambda key: True) -> tuple[int, int]:
    """Uploads every file under `folder` (whose relative path `include` accepts) to
    `<dataset>/<relative path>`; a file whose stored copy has its size and MD5 (a
    single-part ETag) is not sent again. Returns (uploaded, already there)."""
    stored = {o.object_name: o for o in store.client.list_objects(store.bucket, prefix=f"{dataset}/", recursive=True)}
    files = [path for path in _files(folder) if include(path.relative_to(folder).as_posix())]

    def send(path: Path) -> bool:
        key = path.relative_to(folder).as_posix()
        existing = stored.get(object_name(dataset, key))
        if existing and existing.size == path.stat().st_size and (existing.etag or "").strip('"') == _md5(path):
            return False
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        store.client.fput_object(store.bucket, object_name(dataset, key), str(path), content_type=content_type)
        return True

    sent = 0
    with ThreadPoolExecutor(threads) as pool, tqdm(total=len(files), unit="file", desc="upload") as bar:
        for was_sent in pool.map(send, files):
            sent += was_sent
            bar.update()
    return sent, len(files) - sent


def follow(client: Client, job_id: str, poll_s: float = 0.5) -> Job:
    """Shows the job's progress until it ends."""
    bar = tqdm(unit="img", desc="index")
    try:
        while True:
            job = client.job(job_id)
            bar.total = job.total or None
            bar.n = job.done + job.failed + job.skipped
            bar.set_postfix(failed=job.failed, skipped=job.skipped, objects=job.objects,
                            eta=f"{job.eta_seconds:.0f}s", refresh=False)
            bar.refresh()
            if job.state in FINISHED:
                return job
            time.sleep(poll_s)
    finally:
        bar.close()


def report(job: Job, max_failures: int = 20) -> int:
    print(f"job {job.id}: {job.state}: {job.done} indexed, {job.skipped} unchanged, {job.failed} failed, "
          f"{job.objects} objects" + (f", {job.annotation_errors} unusable annotations" if job.annotation_errors else ""))
    if job.error:
        print(f"  error: {job.error}")
    for failure in list(job.failures)[:max_failures]:
        print(f"  {failure.key}: {failure.reason}")
    if len(job.failures) > max_failures:
        print(f"  ... and {len(job.failures) - max_failures} more (vizsearch jobs --dataset {job.dataset})")
    return {"succeeded": 0, "completed_with_failures": 2}.get(job.state, 1)


def cmd_ingest(args, client: Client) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"{folder} is not a folder", file=sys.stderr)
        return 1
    try:
        check_dataset_name(args.dataset)
    except InvalidDatasetName as error:
        print(error, file=sys.stderr)
        return 1
    store = ObjectStore(StorageSettings())
    sent, kept = upload(store, folder, args.dataset, args.threads)
    print(f"uploaded {sent} files to {store.bucket}/{args.dataset}/ ({kept} already there)")
    job = client.scan(args.dataset)
    if args.no_wait:
        print(f"job {job.id} started: vizsearch jobs --dataset {args.dataset}")
        return 0
    return report(follow(client, job.id))


def cmd_datasets(args, client: Client) -> int:
    print(f"{'dataset':24} {'images':>9} {'objects':>9} {'failed':>7}  last job")
    for d in client.datasets():
        last = f"{d.last_job.id} {d.last_job.state}" if d.last_job else "-"
        print(f"{d.name:24} {d.images:9d} {d.objects:9d} {d.failed:7d}  {last}")
    return 0


def cmd_jobs(args, client: Client) -> int:
    jobs = client.jobs(args.dataset, args.limit)
    print(f"{'job':24} {'dataset':16} {'kind':9} {'state':24} {'total':>7} {'done':>7} {'skipped':>7} {'failed':>6}")
    for j in jobs:
        print(f"{j.id:24} {j.dataset:16} {j.kind:9} {j.state:24} {j.total:7d} {j.done:7d} {j.skipped:7d} {j.failed:6d}")
    if args.dataset and jobs:
        report(jobs[0])
    return 0


def _box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"{text!r} is not x1,y1,x2,y2")
    return box


def cmd_search(args, client: Client) -> int:
    if (args.text is None) == (args.image is None):
        print("give a text, or --image PATH (with --box for an object)", file=sys.stderr)
        return 1
    if args.box and not args.image:
        print("--box needs --image", file=sys.stderr)
        return 1
    options = {"datasets": args.dataset or None, "labels": args.label or None, "level": args.level,
               "top_k": args.top_k, "offset": args.offset, "min_score": args.min_score}
    if args.text is not None:
        reply = client.search_text(args.text, **options)
    else:
        reply = client.search_image(args.image, box=args.box, **options)
    if args.json:
        print(reply.model_dump_json(indent=2))
    else:
        print_results(reply)
    return 0


def print_results(reply: SearchResponse) -> None:
    print(f"{len(reply.results)} results in {reply.took_ms:.0f} ms (model {reply.model.model_id}, "
          f"version {reply.model.version})")
    print(f"{'#':>3} {'score':>7}  {'dataset':16} {'key':40} boxes")
    for rank, hit in enumerate(reply.results, 1):
        boxes = "; ".join(f"{o.label} [{', '.join(f'{v:.0f}' for v in o.box)}]" + (f" {o.score:.3f}" if o.score else "")
                          for o in hit.objects)
        print(f"{rank:3d} {hit.score:7.4f}  {hit.dataset:16} {hit.key:40} {boxes}")


def cmd_demo_data(args) -> int:
    from vizsearch import demo_data

    try:
        coco = demo_data.generate(Path(args.out), args.images, args.seed)
    except demo_data.MissingFont as error:
        print(error, file=sys.stderr)
        return 1
    print(f"wrote {len(coco['images'])} images with {len(coco['annotations'])} boxes to {args.out} "
          f"(images/, _annotations/instances.json, captions.json)\n"
          f"next: vizsearch ingest {args.out} --dataset demo")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vizsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("VIZSEARCH_URL", "http://127.0.0.1:8080"),
                        help="the gateway (env VIZSEARCH_URL)")
    parser.add_argument("--api-key", default=os.environ.get("VIZSEARCH_API_KEY"),
                        help="API key (env VIZSEARCH_API_KEY; not needed when the gateway runs without auth)")
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="search by text, example image or object")
    search.add_argument("text", nargs="?")
    search.add_argument("--image", help="a local image file to search by")
    search.add_argument("--box", type=_box, help="x1,y1,x2,y2: search by this object of --image")
    search.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    search.add_argument("--label", action="append", help="only objects with this label (repeatable; objects level)")
    search.add_argument("--level", choices=["images", "objects"])
    search.add_argument("--top-k", type=int, default=10)
    search.add_argument("--offset", type=int, default=0)
    search.add_argument("--min-score", type=float)
    search.add_argument("--json", action="store_true", help="the full response as JSON")
    ingest = commands.add_parser("ingest", help="upload a folder as a dataset and follow its indexing")
    ingest.add_argument("folder")
    ingest.add_argument("--dataset", required=True, help="dataset name: the folder lands under <bucket>/<dataset>/")
    ingest.add_argument("--threads", type=int, default=16, help="concurrent uploads")
    ingest.add_argument("--no-wait", action="store_true", help="start the job and return")
    commands.add_parser("datasets", help="list datasets")
    jobs = commands.add_parser("jobs", help="recent ingestion jobs")
    jobs.add_argument("--dataset", default="")
    jobs.add_argument("--limit", type=int, default=20)
    demo = commands.add_parser("demo-data", help="generate a street-scene dataset with boxes and captions")
    demo.add_argument("--out", required=True)
    demo.add_argument("--images", type=int, default=500)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo-data":  # needs no gateway
        return cmd_demo_data(args)
    handler = {"search": cmd_search, "ingest": cmd_ingest, "datasets": cmd_datasets, "jobs": cmd_jobs}[args.command]
    with Client(args.url, args.api_key) as client:
        try:
            return handler(args, client)
        except ApiError as error:
            print(f"vizsearch: {error.status}: {error.detail}", file=sys.stderr)
            return 1
        except httpx.HTTPError as error:
            print(f"vizsearch: cannot reach the gateway at {args.url}: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
