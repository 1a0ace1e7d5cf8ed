"""Fetches the CLIP checkpoint Triton serves into a directory (the Triton pod's init
container; the local stack for hub ids):

    python -m model.fetch --source openai/clip-vit-base-patch32 --out /models/clip
    python -m model.fetch --source s3://vizsearch/_models/clip-b32 --out /models/clip

A hub id is downloaded from Hugging Face; s3://<bucket>/<prefix> is copied from object
storage (VIZSEARCH_S3_* settings), so pods need no internet when the weights are in
the bucket. Fetching again into a directory that already holds that source does nothing.
"""

import argparse
import sys
from pathlib import Path

from services.common.config import StorageSettings
from services.common.storage import ObjectStore

MARKER = ".vizsearch-source"
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "merges.txt", "vocab.json"]


class FetchError(RuntimeError):
    pass


def fetch(source: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    if marker.is_file() and marker.read_text() == source and (out / "config.json").is_file():
        return out
    if source.startswith("s3://"):
        _from_bucket(source, out)
    else:
        from huggingface_hub import snapshot_download

        snapshot_download(source, local_dir=out, allow_patterns=HUB_FILES)
    if not (out / "config.json").is_file():
        raise FetchError(f"{source} holds no Hugging Face CLIP checkpoint (no config.json)")
    marker.write_text(source)
    return out


def _from_bucket(source: str, out: Path) -> None:
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/"
    store = ObjectStore(StorageSettings(bucket=bucket))
    found = 0
    for item in store.client.list_objects(bucket, prefix=prefix, recursive=True):
        relative = item.object_name[len(prefix):]
        if item.is_dir or not relative or ".." in Path(relative).parts:
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        store.client.fget_object(bucket, item.object_name, str(target))
        found += 1
    if not found:
        raise FetchError(f"no objects under {source}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="hub id (owner/name) or s3://<bucket>/<prefix>")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    try:
        fetch(args.source, args.out)
    except Exception as error:  # noqa: BLE001 - one clear line for the pod's log
        print(f"cannot fetch the model {args.source}: {error}", file=sys.stderr)
        return 1
    print(f"model {args.source} is in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
