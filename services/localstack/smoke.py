"""`make up`'s main job, end to end on the running stack: drop a small generated
dataset (with COCO boxes) into the bucket, index it through the gateway, and
answer a text, an image and an object query. It prints what a user types next."""

import json
import sys
import time

from services.common.config import StorageSettings
from services.common.storage import ObjectStore
from services.localstack.launcher import Stack
from services.localstack.scenes import encode, scene
from vizsearch.client import ApiError, Client

DATASET = "smoke"
IMAGES = 12
BOX = [40, 30, 200, 150]


def drop_dataset(store: ObjectStore) -> None:
    for i in range(IMAGES):
        store.put(DATASET, f"scene{i:02d}.jpg", encode(scene(320, 240, seed=i)), "image/jpeg")
    coco = {"images": [{"id": 1, "file_name": "scene03.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 30, 160, 120]}],
            "categories": [{"id": 1, "name": "block"}]}
    store.put(DATASET, "_annotations/boxes.json", json.dumps(coco).encode(), "application/json")


def show(title: str, reply) -> None:
    print(f"\n{title}: {len(reply.results)} results in {reply.took_ms:.0f} ms")
    for hit in reply.results[:3]:
        boxes = ", ".join(f"{o.label} {[round(v) for v in o.box]}" for o in hit.objects)
        print(f"  {hit.score:7.4f}  {hit.dataset}/{hit.key}  {boxes}")


def run(stack: Stack, api_key: str | None = None) -> int:
    settings = stack.settings
    url = f"http://127.0.0.1:{settings.gateway_http_port}"
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{settings.storage_port}"))
    drop_dataset(store)
    with Client(url, api_key) as client:
        try:
            job = client.scan(DATASET)
            while job.state not in ("succeeded", "completed_with_failures", "failed"):
                time.sleep(0.3)
                job = client.job(job.id)
            print(f"indexed dataset {DATASET!r}: {job.done} images, {job.objects} objects, {job.failed} failed "
                  f"(job {job.id}, {job.state})")
            show("text 'a red square'", client.search_text("a red square", datasets=[DATASET], top_k=5))
            show("image smoke/scene03.jpg", client.search_image((DATASET, "scene03.jpg"), datasets=[DATASET]))
            show(f"object smoke/scene03.jpg {BOX}", client.search_image((DATASET, "scene03.jpg"), box=BOX,
                                                                         datasets=[DATASET]))
        except ApiError as error:
            print(f"the main job failed: {error}", file=sys.stderr)
            return 1
    print(f"""
next, for example:
  curl -s {url}/v1/search -H 'content-type: application/json' \\
       -d '{{"query": {{"text": "a red square"}}, "datasets": ["{DATASET}"], "top_k": 5}}'
  .venv/bin/vizsearch --url {url} search "a red square" --dataset {DATASET}
  .venv/bin/vizsearch --url {url} ingest ./my-photos --dataset photos
  open {url}/docs""")
    return 0
