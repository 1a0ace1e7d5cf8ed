"""The `vizsearch` command line.

    vizsearch ingest FOLDER --dataset NAME   upload a folder and follow its indexing
    vizsearch datasets                       list datasets with their counts
    vizsearch jobs [--dataset NAME]          recent ingestion jobs

Object storage is reached with the same VIZSEARCH_S3_* variables as the
services; the indexer at VIZSEARCH_INDEXER_URL (default 127.0.0.1:50052).
"""

import argparse
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from tqdm import tqdm

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import indexer_pb2, indexer_pb2_grpc
from services.common.storage import ObjectStore, object_name
from services.indexer.catalog import InvalidDatasetName, check_dataset_name

FINISHED = {indexer_pb2.JOB_STATE_SUCCEEDED, indexer_pb2.JOB_STATE_COMPLETED_WITH_FAILURES, indexer_pb2.JOB_STATE_FAILED}
STATE_NAMES = {value: name.removeprefix("JOB_STATE_").lower() for name, value in indexer_pb2.JobState.items()}
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


def upload(store: ObjectStore, folder: Path, dataset: str, threads: int) -> tuple[int, int]:
    """Uploads every file under `folder` to `<dataset>/<relative path>`; a file whose
    stored copy has its size and MD5 (a single-part ETag) is not sent again.
    Returns (uploaded, already there)."""
    stored = {o.object_name: o for o in store.client.list_objects(store.bucket, prefix=f"{dataset}/", recursive=True)}
    files = _files(folder)

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


def follow(indexer, job_id: str, poll_s: float = 0.5) -> indexer_pb2.Job:
    """Shows the job's progress until it ends."""
    bar = tqdm(unit="img", desc="index")
    try:
        while True:
            job = indexer.GetJob(indexer_pb2.GetJobRequest(id=job_id), timeout=30)
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


def report(job: indexer_pb2.Job, max_failures: int = 20) -> int:
    state = STATE_NAMES[job.state]
    print(f"job {job.id}: {state}: {job.done} indexed, {job.skipped} unchanged, {job.failed} failed, "
          f"{job.objects} objects" + (f", {job.annotation_errors} unusable annotations" if job.annotation_errors else ""))
    if job.error:
        print(f"  error: {job.error}")
    for failure in list(job.failures)[:max_failures]:
        print(f"  {failure.key}: {failure.reason}")
    if len(job.failures) > max_failures:
        print(f"  ... and {len(job.failures) - max_failures} more (vizsearch jobs --dataset {job.dataset})")
    return {indexer_pb2.JOB_STATE_SUCCEEDED: 0, indexer_pb2.JOB_STATE_COMPLETED_WITH_FAILURES: 2}.get(job.state, 1)


def cmd_ingest(args, indexer) -> int:
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
    job = indexer.ScanDataset(indexer_pb2.ScanDatasetRequest(name=args.dataset), timeout=30)
    if args.no_wait:
        print(f"job {job.id} started: vizsearch jobs --dataset {args.dataset}")
        return 0
    return report(follow(indexer, job.id))


def cmd_datasets(args, indexer) -> int:
    datasets = indexer.ListDatasets(indexer_pb2.ListDatasetsRequest(), timeout=60).datasets
    print(f"{'dataset':24} {'images':>9} {'objects':>9} {'failed':>7}  last job")
    for d in datasets:
        last = f"{d.last_job.id} {STATE_NAMES[d.last_job.state]}" if d.HasField("last_job") else "-"
        print(f"{d.name:24} {d.images:9d} {d.objects:9d} {d.failed:7d}  {last}")
    return 0


def cmd_jobs(args, indexer) -> int:
    jobs = indexer.ListJobs(indexer_pb2.ListJobsRequest(dataset=args.dataset, limit=args.limit), timeout=30).jobs
    print(f"{'job':24} {'dataset':16} {'kind':9} {'state':24} {'total':>7} {'done':>7} {'skipped':>7} {'failed':>6}")
    for j in jobs:
        print(f"{j.id:24} {j.dataset:16} {j.kind:9} {STATE_NAMES[j.state]:24} {j.total:7d} {j.done:7d} "
              f"{j.skipped:7d} {j.failed:6d}")
    if args.dataset and jobs:
        report(jobs[0])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vizsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indexer", default=os.environ.get("VIZSEARCH_INDEXER_URL", "127.0.0.1:50052"),
                        help="host:port of the indexer (env VIZSEARCH_INDEXER_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="upload a folder as a dataset and follow its indexing")
    ingest.add_argument("folder")
    ingest.add_argument("--dataset", required=True, help="dataset name: the folder lands under <bucket>/<dataset>/")
    ingest.add_argument("--threads", type=int, default=16, help="concurrent uploads")
    ingest.add_argument("--no-wait", action="store_true", help="start the job and return")
    commands.add_parser("datasets", help="list datasets")
    jobs = commands.add_parser("jobs", help="recent ingestion jobs")
    jobs.add_argument("--dataset", default="")
    jobs.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    handler = {"ingest": cmd_ingest, "datasets": cmd_datasets, "jobs": cmd_jobs}[args.command]
    with grpc.insecure_channel(args.indexer) as channel:
        try:
            return handler(args, indexer_pb2_grpc.IndexerStub(channel))
        except grpc.RpcError as error:
            print(f"vizsearch: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
