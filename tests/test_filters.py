"""The filters users ask for, through the gateway over HTTP and gRPC: labels an image
must have all of, labels to exclude, a folder (key prefix), and the image's size, each
escaped and each refused with a clear 422 / INVALID_ARGUMENT where it cannot apply."""

import json
import time

import grpc
import httpx
import pytest

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import gateway_pb2_grpc, query_pb2
from services.common.storage import ObjectStore
from tests import imagegen
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.stack
DATASET = "filtered"
IMAGES = {  # key -> ((width, height), [(label, [x, y, w, h])])
    "cam1/a.jpg": ((320, 240), [("car", [10, 10, 80, 60]), ("dog", [150, 100, 60, 50])]),
    "cam1/b.jpg": ((320, 240), [("car", [30, 40, 100, 70])]),
    "cam2/c.jpg": ((640, 480), [("dog", [50, 50, 120, 90]), ("bus", [300, 200, 200, 150])]),
    "cam2/d%_.jpg": ((160, 120), []),  # LIKE's wildcards in a key: a prefix must match them as themselves
    "cam10/e.jpg": ((320, 240), [("bus", [20, 20, 150, 100])]),
}
READER = {"Authorization": f"Bearer {TEST_KEYS['reader'][0]}"}


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.gateway_http_port}", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def indexed(stack, api):
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))
    coco = {"images": [], "annotations": [], "categories": [{"id": n, "name": n} for n in ("bus", "car", "dog")]}
    for i, (key, ((w, h), boxes)) in enumerate(IMAGES.items()):
        store.put(DATASET, key, imagegen.encode(imagegen.scene(w, h, seed=700 + i)), "image/jpeg")
        coco["images"].append({"id": i, "file_name": key})
        coco["annotations"] += [{"image_id": i, "category_id": label, "bbox": bbox} for label, bbox in boxes]
    store.put(DATASET, "_annotations/boxes.json", json.dumps(coco).encode())
    job = api.post(f"/v1/datasets/{DATASET}/scan",
                   headers={"Authorization": f"Bearer {TEST_KEYS['writer'][0]}"}).json()
    deadline = time.monotonic() + 240
    while (job := api.get(f"/v1/jobs/{job['id']}", headers=READER).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert (job["state"], job["done"], job["objects"]) == ("succeeded", 5, 6), job


@pytest.fixture(scope="module")
def gateway_grpc(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        yield gateway_pb2_grpc.GatewayStub(channel)


def found(api, level: str = "images", **filters) -> dict[str, set]:
    """key -> the labels of its object hits (empty at the images level), for everything that passes."""
    reply = api.post("/v1/search", headers=READER, json={
        "query": {"text": "a street"}, "datasets": [DATASET], "level": level, "top_k": 100, **filters})
    assert reply.status_code == 200, reply.text
    return {r["key"]: {o["label"] for o in r["objects"] if o["score"]} for r in reply.json()["results"]}


@pytest.mark.parametrize("filters, level, expected", [
    ({"all_labels": ["car", "dog"]}, "images", {"cam1/a.jpg": set()}),
    ({"all_labels": ["car", "dog"]}, "objects", {"cam1/a.jpg": {"car", "dog"}}),
    ({"exclude_labels": ["dog"]}, "images", {"cam1/b.jpg": set(), "cam2/d%_.jpg": set(), "cam10/e.jpg": set()}),
    ({"exclude_labels": ["dog"]}, "objects", {"cam1/a.jpg": {"car"}, "cam1/b.jpg": {"car"}, "cam2/c.jpg": {"bus"},
                                              "cam10/e.jpg": {"bus"}}),
    ({"key_prefix": "cam1/"}, "images", {"cam1/a.jpg": set(), "cam1/b.jpg": set()}),
    ({"key_prefix": "cam2/d%"}, "images", {"cam2/d%_.jpg": set()}),
    ({"key_prefix": "cam2/d_"}, "images", {}),
    ({"min_width": 640}, "images", {"cam2/c.jpg": set()}),
    ({"max_height": 120}, "images", {"cam2/d%_.jpg": set()}),
    ({"min_width": 300, "max_width": 400, "key_prefix": "cam1"}, "images",
     {"cam1/a.jpg": set(), "cam1/b.jpg": set(), "cam10/e.jpg": set()}),
    ({"all_labels": ["bus"], "exclude_labels": ["dog"], "max_height": 300}, "objects", {"cam10/e.jpg": {"bus"}}),
])
def test_each_filter_keeps_exactly_what_it_names(api, indexed, filters, level, expected):
    assert found(api, level, **filters) == expected


def test_grpc_filters_as_http_does(api, indexed, gateway_grpc):
    request = query_pb2.SearchRequest(
        query=query_pb2.QueryTerm(text="a street"), level=query_pb2.LEVEL_OBJECTS, top_k=100,
        filters=query_pb2.Filters(datasets=[DATASET], all_labels=["bus"], key_prefix="cam", exclude_labels=["dog"]))
    reply = gateway_grpc.Search(request, metadata=[("authorization", READER["Authorization"])], timeout=60)
    assert {r.key: {o.label for o in r.objects} for r in reply.results} == \
        found(api, "objects", all_labels=["bus"], key_prefix="cam", exclude_labels=["dog"]) == \
        {"cam2/c.jpg": {"bus"}, "cam10/e.jpg": {"bus"}}
    bad = query_pb2.SearchRequest(query=query_pb2.QueryTerm(text="a street"),
                                  filters=query_pb2.Filters(min_width=500, max_width=100))
    with pytest.raises(grpc.RpcError) as raised:
        gateway_grpc.Search(bad, metadata=[("authorization", READER["Authorization"])], timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "filters.min_width (500) is above filters.max_width (100)" in raised.value.details()


@pytest.mark.parametrize("filters, words", [
    ({"min_width": 500, "max_width": 100}, "filters.min_width (500) is above filters.max_width (100)"),
    ({"min_height": -1}, "min_height"),
    ({"min_width": 2**70}, "min_width"),  # beyond the wire's int32: refused, not a 500
    ({"exclude_labels": [""]}, "filters.exclude_labels has an empty value"),
    ({"all_labels": ["car"] * 300}, "all_labels"),
    ({"key_prefix": "k" * 1025}, "key_prefix"),
    ({"labels": ["car"], "level": "images"}, "filters.labels applies to object entries"),
])
def test_filters_that_cannot_apply_are_refused_by_name(api, filters, words):
    reply = api.post("/v1/search", headers=READER, json={"query": {"text": "a street"}, **filters})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json", reply.text
    assert words in reply.json()["detail"], reply.json()


def test_a_size_beyond_any_image_is_refused_in_an_upload_search_too(api):
    reply = api.post("/v1/search/upload", headers=READER, files={"file": ("a.jpg", b"x", "image/jpeg")},
                     data={"min_width": str(2**70)})
    assert reply.status_code == 422 and "min_width" in reply.text, reply.text
