"""A map of a dataset: the projection (unit), and the map job on the real stack through
HTTP, gRPC and the CLI, at both levels, with its sampling, export and errors."""

import csv
import io
import json

import grpc
import numpy as np
import pytest

from model import demo_data
from services.common.genproto.vizsearch.v1 import gateway_pb2_grpc, indexer_pb2
from services.indexer.maps import _point, layout_of, read_points, sample
from tests.conftest import TEST_KEYS, wait_for_job
from vizsearch import cli
from vizsearch.client import Client

READER = {"Authorization": f"Bearer {TEST_KEYS['reader'][0]}"}
WRITER = {"Authorization": f"Bearer {TEST_KEYS['writer'][0]}"}
DATASET = "mapped"
IMAGES = 40


# -- the projection -----------------------------------------------------------------------
def test_two_groups_of_alike_vectors_land_apart():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 64))
    vectors = np.vstack([centre + 0.05 * rng.normal(size=(60, 64)) for centre in centres]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    layout = layout_of(vectors)
    assert layout.shape == (120, 2) and layout.min() >= 0 and layout.max() <= 1
    first, second = layout[:60].mean(axis=0), layout[60:].mean(axis=0)
    spread = max(np.linalg.norm(layout[:60] - first, axis=1).mean(), np.linalg.norm(layout[60:] - second, axis=1).mean())
    assert np.linalg.norm(first - second) > 3 * spread, "the two groups are drawn apart"


def test_a_handful_of_points_still_gets_a_place_each():
    layout = layout_of(np.eye(3, 8, dtype=np.float32))
    assert layout.shape == (3, 2) and len({tuple(p) for p in layout.round(3)}) == 3
    assert layout_of(np.zeros((0, 8), np.float32)).shape == (0, 2)


def test_stored_points_read_back_and_a_sample_is_the_same_every_time():
    image = {"dataset": "ds", "key": "a.jpg", "label": "", "labels": ["bus", "car"]}
    box = {"dataset": "ds", "key": "b.jpg", "label": "dog", "labels": ["dog"], "box_x1": 1, "box_y1": 2, "box_x2": 30,
           "box_y2": 40}
    stored = [(b"points:000000", json.dumps([_point(image, "images", 0.25, 0.5), _point(box, "objects", 1, 0)]))]
    first, second = read_points(stored)
    assert (first.key, list(first.labels), first.HasField("box")) == ("a.jpg", ["bus", "car"], False)
    assert (second.labels, second.box.x2, second.x, second.y) == (["dog"], 30, 1, 0)
    assert sample(list(range(1000)), 10) == sample(list(range(1000)), 10) and len(sample(list(range(5)), 10)) == 5


# -- the job on the real stack ---------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(stack, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("mapped")
    coco = demo_data.generate(folder, IMAGES, seed=77)
    with Client(f"http://127.0.0.1:{stack.settings.gateway_http_port}", TEST_KEYS["writer"][0]) as client:
        client.upload(folder, DATASET, include=lambda key: not key.endswith("captions.json"))
        job = client.wait(client.scan(DATASET).id)
        assert job.state == "succeeded", job
    return coco


def make_map(api, **body) -> dict:
    reply = api.post(f"/v1/datasets/{DATASET}/map", headers=WRITER, json=body)
    assert reply.status_code == 202, reply.text
    job = wait_for_job(api, reply.json())
    assert job["state"] == "succeeded", job["error"]
    return job


@pytest.mark.stack
def test_a_map_of_the_images_places_every_image(api, dataset):
    job = make_map(api)
    assert (job["kind"], job["map"], job["total"]) == ("map", {"level": "images", "max_points": 200000}, IMAGES)
    found = api.get(f"/v1/datasets/{DATASET}/map", headers=READER).json()
    assert found["job"]["id"] == job["id"] and found["total_points"] == IMAGES
    assert {p["key"] for p in found["points"]} == {i["file_name"] for i in dataset["images"]}
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 and p["box"] is None for p in found["points"])
    labelled = {i["file_name"]: set() for i in dataset["images"]}
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    files = {i["id"]: i["file_name"] for i in dataset["images"]}
    for a in dataset["annotations"]:
        labelled[files[a["image_id"]]].add(names[a["category_id"]])
    assert all(set(p["labels"]) == labelled[p["key"]] for p in found["points"])
    few = api.get(f"/v1/datasets/{DATASET}/map", headers=READER, params={"points": 10}).json()
    assert len(few["points"]) == 10 and few["total_points"] == IMAGES
    assert few == api.get(f"/v1/datasets/{DATASET}/map", headers=READER, params={"points": 10}).json(), "a fixed sample"


@pytest.mark.stack
def test_a_map_of_the_objects_has_their_boxes_and_a_sample_bounds_it(api, dataset):
    job = make_map(api, level="objects", max_points=50)
    assert job["total"] == 50, "a random sample of max_points"
    found = api.get(f"/v1/datasets/{DATASET}/map", headers=READER, params={"level": "objects"}).json()
    assert found["job"]["id"] == job["id"] and len(found["points"]) == 50
    assert all(p["box"] and len(p["labels"]) == 1 for p in found["points"])
    images = api.get(f"/v1/datasets/{DATASET}/map", headers=READER).json()
    assert images["job"]["map"]["level"] == "images", "each level's latest map is its own"
    exported = api.get(f"/v1/datasets/{DATASET}/map/export", headers=READER, params={"level": "objects",
                                                                                      "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 50 and all(r["box_x2"] for r in rows)


@pytest.mark.stack
@pytest.mark.parametrize("method, path, body, status, detail", [
    ("post", f"/v1/datasets/{DATASET}/map", {"level": "pixels"}, 422, "level"),
    ("post", f"/v1/datasets/{DATASET}/map", {"max_points": 10_000_000}, 422, "max_points is 10000000"),
    ("post", "/v1/datasets/no-such/map", {}, 404, "no dataset 'no-such'"),
    ("get", f"/v1/datasets/{DATASET}/map?points=0", None, 422, "points"),
    ("get", f"/v1/datasets/{DATASET}/map?job=20000101-000000-abcdef", None, 404, "no map job"),
])
def test_bad_requests_are_refused_by_name(api, dataset, method, path, body, status, detail):
    headers = WRITER if method == "post" else READER
    reply = api.post(path, headers=headers, json=body) if method == "post" else api.get(path, headers=headers)
    assert reply.status_code == status, reply.text
    assert detail in reply.text


@pytest.mark.stack
def test_the_grpc_door_and_the_cli_answer_alike(stack, api, dataset, tmp_path, capsys):
    make_map(api)
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        reply = gateway_pb2_grpc.GatewayStub(channel).GetMap(indexer_pb2.GetMapRequest(dataset=DATASET),
                                                             metadata=[("authorization", READER["Authorization"])])
    assert reply.total_points == IMAGES and len(reply.points) == IMAGES
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    common = ["--url", url, "--api-key", TEST_KEYS["reader"][0]]
    assert cli.main(["map", DATASET, "--show", *common]) == 0
    assert f"a map of {IMAGES} images" in capsys.readouterr().out
    out = tmp_path / "points.jsonl"
    assert cli.main(["map", DATASET, "--show", "--export", "jsonl", "-o", str(out), *common]) == 0
    assert {json.loads(line)["key"] for line in out.read_text().splitlines()} == {p.key for p in reply.points}


@pytest.mark.stack
def test_a_map_of_a_dataset_with_nothing_indexed_is_empty(api, dataset):
    assert api.post("/v1/datasets/mapped-empty/scan", headers=WRITER).status_code == 202  # registers it
    reply = api.post("/v1/datasets/mapped-empty/map", headers=WRITER, json={})
    job = wait_for_job(api, reply.json())
    assert (job["state"], job["total"]) == ("succeeded", 0), job["error"]
    found = api.get("/v1/datasets/mapped-empty/map", headers=READER).json()
    assert (found["points"], found["total_points"]) == ([], 0)
