"""`make demo`: the main job on the running local stack. Generates the demo street-scene
dataset, drops it into the bucket, follows its indexing, then answers a text, an image
and an object query through the gateway, and prints what a user types next."""

import json
import sys
from pathlib import Path

from services.localstack.launcher import Stack
from model import demo_data
from vizsearch import cli
from vizsearch.client import ApiError, Client
from vizsearch.models import SearchResponse
from vizsearch.names import ANNOTATIONS_DIR

DATASET = "demo"
IMAGES = 300
SEED = 0
TEXT = "a taxi on a road at night"


def show(title: str, reply: SearchResponse, top: int = 5) -> None:
    print(f"\n{title}: {len(reply.results)} results in {reply.took_ms:.0f} ms")
    for hit in reply.results[:top]:
        boxes = ", ".join(f"{o.label} [{', '.join(f'{v:.0f}' for v in o.box)}]" for o in hit.objects)
        print(f"  {hit.score:7.4f}  {hit.dataset}/{hit.key}  {boxes}")


def first_box_of(coco: dict, label: str) -> tuple[str, list[float]]:
    """The file and [x1, y1, x2, y2] of the first annotated `label`."""
    category = next(c["id"] for c in coco["categories"] if c["name"] == label)
    files = {i["id"]: i["file_name"] for i in coco["images"]}
    found = next(a for a in coco["annotations"] if a["category_id"] == category)
    x, y, w, h = found["bbox"]
    return files[found["image_id"]], [x, y, x + w, y + h]


def run(stack: Stack, api_key: str | None = None, images: int = IMAGES) -> int:
    settings = stack.settings
    url = f"http://127.0.0.1:{settings.gateway_http_port}"
    folder = settings.run_dir / "demo-data" / f"seed{SEED}-{images}"
    if not (folder / "captions.json").is_file():
        demo_data.generate(folder, images, SEED)
    coco = json.loads((folder / ANNOTATIONS_DIR / "instances.json").read_text())
    image_key, _ = first_box_of(coco, "bus")
    object_key, box = first_box_of(coco, "taxi")
    with Client(url, api_key) as client:
        try:
            sent, kept = cli.upload(client, folder, DATASET, threads=8)
            print(f"uploaded {sent} files into {DATASET}/ ({kept} already there)")
            job = cli.follow(client, client.scan(DATASET).id)
            cli.report(job)
            if job.state == "failed":
                return 1
            print(f"model: {client.model().model_id}")
            show(f"text {TEXT!r}", client.search_text(TEXT, datasets=[DATASET]))
            show(f"image {DATASET}/{image_key} (it shows a bus)", client.search_image((DATASET, image_key),
                                                                                     datasets=[DATASET]))
            show(f"object {DATASET}/{object_key} {box} (a taxi)",
                 client.search_image((DATASET, object_key), box=box, datasets=[DATASET]))
        except ApiError as error:
            print(f"the demo failed: {error}", file=sys.stderr)
            return 1
    box_arg = ",".join(f"{v:g}" for v in box)
    print(f"""
next, for example:
  curl -s {url}/v1/search -H 'content-type: application/json' \\
       -d '{{"query": {{"text": "a bus and a dog"}}, "datasets": ["{DATASET}"], "top_k": 5}}'
  .venv/bin/vizsearch --url {url} search "a bicycle at dusk" --dataset {DATASET}
  .venv/bin/vizsearch --url {url} search --image {Path(folder, object_key)} --box {box_arg} --dataset {DATASET}
  .venv/bin/vizsearch --url {url} ingest ./my-photos --dataset photos
  open {url}/docs        (the API),  make eval  (retrieval quality),  make down  (stop)

the web app, with the demo dataset ready to search:  {url}/""")
    return 0
