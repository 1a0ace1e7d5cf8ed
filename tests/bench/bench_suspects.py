"""Suspect labels on demo data with known errors: `make bench-suspects` (IMAGES=300,
SWAPPED=0.1 by default).

Brings up the whole stack on ports of its own, serving the demo CLIP, indexes generated
demo scenes with a fraction of their boxes given another class at random, runs a
suspect-labels job and prints its time, and the precision and recall of the suspects at
the top of the list (as many as were swapped: the issue's target is precision >= 0.8
there) and over the whole list.
"""

import argparse
import json
import time

from model import demo_data
from tests.bench.bench_duplicates import demo_stack, every_page
from vizsearch.client import Client
from vizsearch.names import ANNOTATIONS_DIR

DATASET = "suspects"


def corners(bbox: list[float]) -> tuple:
    x, y, w, h = bbox
    return tuple(round(v) for v in (x, y, x + w, y + h))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--swapped", type=float, default=0.1, help="fraction of the boxes given another class")
    parser.add_argument("--neighbours", type=int, help="voters per box (default: the indexer's)")
    args = parser.parse_args()
    with demo_stack() as (settings, run_dir):
        folder = run_dir / "demo"
        coco = demo_data.generate(folder, args.images, seed=7)
        changed = demo_data.swap_labels(coco, args.swapped, seed=7)
        (folder / ANNOTATIONS_DIR / "instances.json").write_text(json.dumps(coco))
        files = {image["id"]: image["file_name"] for image in coco["images"]}
        swapped = {(files[a["image_id"]], corners(a["bbox"])) for a in changed}
        with Client(f"http://127.0.0.1:{settings.gateway_http_port}", timeout_s=300) as client:
            client.upload(folder, DATASET, include=lambda key: not key.endswith("captions.json"))
            job = client.wait(client.scan(DATASET).id)
            print(f"indexed {job.done} images, {job.objects} boxes, {len(swapped)} of them relabelled "
                  f"({args.swapped:.0%})", flush=True)
            started = time.monotonic()
            job = client.wait(client.find_suspects(DATASET, neighbours=args.neighbours).id, poll_s=0.2)
            elapsed = time.monotonic() - started
            suspects = every_page(lambda offset: client.suspects(DATASET, job.id, limit=1000, offset=offset),
                                  lambda page: (page.suspects, page.total_suspects))
        found = [(s.key, tuple(round(v) for v in s.box)) in swapped for s in suspects]
        top = found[:len(swapped)]
        print(f"\nsuspect-labels job: {job.state}, {job.total} boxes in {elapsed:.1f} s "
              f"({job.total / elapsed:.0f} boxes/s, from the request to the end), "
              f"{job.suspects.neighbours} neighbours vote")
        print(f"  suspects: {len(suspects)}")
        print(f"  top {len(top)} (as many as relabelled): precision {sum(top) / max(len(top), 1):.3f}, "
              f"recall {sum(top) / len(swapped):.3f}   (target: precision >= 0.8)")
        print(f"  all suspects: precision {sum(found) / max(len(found), 1):.3f}, "
              f"recall {sum(found) / len(swapped):.3f}")


if __name__ == "__main__":
    main()
