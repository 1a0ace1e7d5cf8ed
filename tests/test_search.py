"""Search through the gateway on the real stack: the three kinds of query and their
combination, filters, paging, errors, authentication and scoping, HTTP/gRPC parity."""

import base64
import json
import time

import grpc
import httpx
import pytest

from services.common.genproto.vizsearch.v1 import (common_pb2, gateway_pb2, gateway_pb2_grpc, indexer_pb2,
                                                   indexer_pb2_grpc, query_pb2)
from services.common.config import StorageSettings
from services.common.storage import ObjectStore
from services.common.vectors import Entry, VectorSettings, VectorStore
from tests import imagegen
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.stack
DATASET = "search"
W, H = 320, 240
BOXES = {  # key -> [(label, [x, y, w, h], score or None)]
    "a.jpg": [("bus", [20, 30, 120, 100], None), ("car", [180, 120, 100, 80], 0.8)],
    "b.jpg": [("bus", [50, 40, 200, 150], None)],
    "c.jpg": [("dog", [10, 10, 40, 30], None)],
}
KEYS = [f"{c}.jpg" for c in "abcdefgh"]


def key_of(name: str) -> dict:
    return {"Authorization": f"Bearer {TEST_KEYS[name][0]}"}


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.gateway_http_port}", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def images(stack, api) -> dict[str, bytes]:
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))
    files = {key: imagegen.encode(imagegen.scene(W, H, seed=300 + i)) for i, key in enumerate(KEYS)}
    for key, data in files.items():
        store.put(DATASET, key, data, "image/jpeg")
    coco = {"images": [{"id": i, "file_name": k} for i, k in enumerate(BOXES)],
            "annotations": [], "categories": [{"id": n, "name": n} for n in ("bus", "car", "dog")]}
    for i, (key, boxes) in enumerate(BOXES.items()):
        for label, bbox, score in boxes:
            coco["annotations"].append({"image_id": i, "category_id": label, "bbox": bbox,
                                        **({"score": score} if score is not None else {})})
    store.put(DATASET, "_annotations/gt.json", json.dumps(coco).encode())
    job = api.post(f"/v1/datasets/{DATASET}/scan", headers=key_of("writer")).json()
    deadline = time.monotonic() + 240
    while (job := api.get(f"/v1/jobs/{job['id']}", headers=key_of("reader")).json())["state"] not in (
            "succeeded", "completed_with_failures", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert (job["state"], job["done"], job["objects"]) == ("succeeded", len(KEYS), 4), job
    assert job["created_at"] <= job["started_at"] <= job["finished_at"], job  # ISO 8601, UTC: ordered as text
    assert job["finished_at"].endswith("Z") or job["finished_at"].endswith("+00:00")
    return files


def search(api, body: dict, key: str = "reader") -> dict:
    reply = api.post("/v1/search", json=body, headers=key_of(key))
    assert reply.status_code == 200, reply.text
    return reply.json()


def problem(api, body: dict, status: int, key: str = "reader") -> str:
    reply = api.post("/v1/search", json=body, headers=key_of(key))
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    document = reply.json()
    assert document["status"] == status and document["title"]
    return document["detail"]


def test_text_search_ranks_images_with_scores_and_links(api, images, dimension):
    reply = search(api, {"query": {"text": "a bus on a street"}, "datasets": [DATASET], "top_k": 5})
    results = reply["results"]
    assert len(results) == 5 and reply["model"]["dimension"] == dimension
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert all(r["dataset"] == DATASET and (r["width"], r["height"]) == (W, H) for r in results)
    first = results[0]
    fetched = api.get(first["url"].split(str(api.base_url).rstrip("/"))[-1], headers=key_of("reader"))
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
    assert fetched.content == images[first["key"]]
    annotated = next(r for r in search(api, {"query": {"text": "x"}, "datasets": [DATASET], "top_k": 8})["results"]
                     if r["key"] == "a.jpg")
    assert sorted(o["label"] for o in annotated["objects"]) == ["bus", "car"], "image results carry their boxes"


def test_query_by_an_indexed_image_finds_itself_first(api, images):
    reply = search(api, {"query": {"image": {"dataset": DATASET, "key": "d.jpg"}}, "datasets": [DATASET]})
    assert reply["results"][0]["key"] == "d.jpg" and reply["results"][0]["score"] > 0.999
    encoded = base64.b64encode(images["d.jpg"]).decode()
    by_value = search(api, {"query": {"image": {"data": encoded}}, "datasets": [DATASET]})
    assert [r["key"] for r in by_value["results"]] == [r["key"] for r in reply["results"]]
    uploaded = api.post("/v1/search/upload", files={"file": ("q.jpg", images["d.jpg"], "image/jpeg")},
                        data={"datasets": DATASET, "top_k": "3"}, headers=key_of("reader"))
    assert uploaded.status_code == 200, uploaded.text
    assert [r["key"] for r in uploaded.json()["results"]] == [r["key"] for r in reply["results"][:3]]


def test_object_queries_search_boxes_and_group_them_by_image(api, images):
    box = [20, 30, 140, 130]  # a.jpg's bus
    reply = search(api, {"query": {"object": {"dataset": DATASET, "key": "a.jpg", "box": box}}, "datasets": [DATASET]})
    first = reply["results"][0]
    assert first["key"] == "a.jpg" and first["objects"][0]["label"] == "bus"
    assert first["objects"][0]["box"] == box and first["objects"][0]["score"] == first["score"]
    assert first["score"] == pytest.approx(1.0, abs=1e-4), "the query box is cropped as its indexed entry was"
    assert len({(r["dataset"], r["key"]) for r in reply["results"]}) == len(reply["results"]), "one entry per image"
    car = next(o for r in reply["results"] for o in r["objects"] if o["label"] == "car")
    assert car["source"] == "prediction" and car["detector_score"] == pytest.approx(0.8)
    # Without annotations, an object query still searches whole images (a box as large as the image: itself first).
    whole = search(api, {"query": {"object": {"dataset": DATASET, "key": "e.jpg", "box": [0, 0, W, H]}},
                         "datasets": [DATASET], "level": "images"})
    assert len(whole["results"]) == len(KEYS) and whole["results"][0]["key"] == "e.jpg"
    upload = api.post("/v1/search/upload", files={"file": ("q.jpg", images["a.jpg"], "image/jpeg")},
                      data={"box": "20,30,140,130", "datasets": DATASET}, headers=key_of("reader"))
    assert upload.status_code == 200 and upload.json()["results"][0]["key"] == "a.jpg"


def test_results_export_as_json_lines_csv_and_coco(api, images):
    body = {"query": {"text": "a bus on a street"}, "datasets": [DATASET], "top_k": len(KEYS)}
    shown = search(api, body)["results"]
    files = {}
    for format, media in (("jsonl", "application/x-ndjson"), ("csv", "text/csv"), ("coco", "application/json")):
        reply = api.post("/v1/search/export", json={**body, "format": format}, headers=key_of("reader"))
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith(media)
        assert "attachment" in reply.headers["content-disposition"]
        files[format] = reply.content
    assert [json.loads(line)["key"] for line in files["jsonl"].splitlines()] == [r["key"] for r in shown]
    assert sum(1 for _ in files["csv"].splitlines()) == 1 + sum(max(1, len(r["objects"])) for r in shown)
    coco = json.loads(files["coco"])
    assert [i["file_name"] for i in coco["images"]] == [r["key"] for r in shown]
    a = next(i["id"] for i in coco["images"] if i["file_name"] == "a.jpg")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted((names[x["category_id"]], x["bbox"]) for x in coco["annotations"] if x["image_id"] == a) == sorted(
        (label, bbox) for label, bbox, _ in BOXES["a.jpg"]), "the dataset's own COCO boxes come back"
    refused = api.post("/v1/search/export", json={**body, "format": "xml"}, headers=key_of("reader"))
    assert refused.status_code == 422 and "format" in refused.text
    assert api.post("/v1/search/export", json={**body, "format": "csv"}).status_code == 401


def test_boxes_too_many_to_store_on_an_image_entry_are_looked_up(stack, api, images):
    """An image entry stores its boxes unless they overflow one VARCHAR; then search looks
    them up in the objects collection (written here directly: 800+ real boxes would be slow)."""
    model = api.get("/v1/model", headers=key_of("reader")).json()
    text = "a crowd of boxes"
    vector = api.post("/v1/embeddings", json={"texts": [text]}, headers=key_of("reader")).json()["vectors"][0]
    store = VectorStore(VectorSettings(milvus_uri=f"http://127.0.0.1:{stack.settings.milvus_port}"))
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.indexer_port}") as channel:  # results need their dataset
        indexer_pb2_grpc.IndexerStub(channel).CreateDataset(indexer_pb2.CreateDatasetRequest(name="crowd"), timeout=30)
    boxes = [(10.0, 40.0, 50.0, 90.0, "dog"), (5.0, 10.0, 30.0, 30.0, "bus")]
    objects = [Entry("crowd", "c.jpg", vector, W, H, "sha", 0, box=b[:4], label=b[4], source="ground_truth")
               for b in boxes]
    try:
        store.write(model["version"], "objects", objects)
        store.write(model["version"], "images", [Entry("crowd", "c.jpg", vector, W, H, "sha", 0, objects=2)])
        first = search(api, {"query": {"text": text}, "top_k": 1}, key="admin")["results"][0]
        assert (first["dataset"], first["key"]) == ("crowd", "c.jpg")
        assert [(o["label"], o["box"]) for o in first["objects"]] == [
            ("bus", [5.0, 10.0, 30.0, 30.0]), ("dog", [10.0, 40.0, 50.0, 90.0])], "top to bottom"
    finally:
        assert api.delete("/v1/datasets/crowd", headers=key_of("admin")).status_code == 200
        store.close()


def metric(port: int, prefix: str) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(prefix))


def cache_hits(stack) -> float:
    return metric(stack.settings.query_metrics_port, 'vizsearch_query_embedding_cache_total{result="hit"}')


def test_a_query_by_an_indexed_box_reuses_its_vector(stack, api, images):
    def embedded() -> float:
        return metric(stack.settings.embedder_metrics_port,
                      'vizsearch_grpc_requests_total{code="OK",method="EmbedImages",service="embedder"}')

    before = embedded()
    reply = search(api, {"query": {"object": {"dataset": DATASET, "key": "a.jpg", "box": [20, 30, 140, 130]}},
                         "datasets": [DATASET]})
    assert reply["results"][0]["key"] == "a.jpg" and reply["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert embedded() == before, "the stored object vector, not a new embedding"
    drawn = search(api, {"query": {"object": {"dataset": DATASET, "key": "a.jpg", "box": [21, 30, 140, 130]}},
                         "datasets": [DATASET]})
    assert embedded() == before + 1 and drawn["results"][0]["key"] == "a.jpg", "a drawn box is embedded"


def test_paging_through_a_query_embeds_it_once(stack, api, images):
    encoded = base64.b64encode(images["c.jpg"]).decode()
    for query in ({"text": "a paged query about buses"}, {"image": {"data": encoded}},
                  {"object": {"data": encoded, "box": [10, 10, 100, 90]}}):
        before = cache_hits(stack)
        first = search(api, {"query": query, "datasets": [DATASET], "top_k": 3})["results"]
        second = search(api, {"query": query, "datasets": [DATASET], "top_k": 3, "offset": 3})["results"]
        whole = search(api, {"query": query, "datasets": [DATASET], "top_k": 6})["results"]
        assert cache_hits(stack) - before == 2, query
        assert [r["key"] for r in first + second] == [r["key"] for r in whole]


def test_weighted_and_negative_combinations(api, images):
    f = {"image": {"dataset": DATASET, "key": "f.jpg"}}
    g = {"image": {"dataset": DATASET, "key": "g.jpg"}}
    alone = {r["key"]: r["score"] for r in search(api, {"query": f, "datasets": [DATASET], "top_k": 8})["results"]}
    combined = search(api, {"query": {"all": [{"query": f, "weight": 1.0}, {"query": g, "weight": -0.5}]},
                            "datasets": [DATASET], "top_k": 8})["results"]
    scores = {r["key"]: r["score"] for r in combined}
    assert combined[0]["key"] == "f.jpg"
    assert scores["g.jpg"] < alone["g.jpg"], "the negative term pushes g away"
    detail = problem(api, {"query": {"all": [{"query": f, "weight": 1}, {"query": f, "weight": -1}]}}, 422)
    assert "cancel out" in detail


def test_filters_paging_and_thresholds(api, images):
    buses = search(api, {"query": {"text": "a bus"}, "level": "objects", "labels": ["bus"], "datasets": [DATASET]})
    assert {r["key"] for r in buses["results"]} == {"a.jpg", "b.jpg"}
    assert all(o["label"] == "bus" for r in buses["results"] for o in r["objects"])
    predicted = search(api, {"query": {"text": "a car"}, "level": "objects", "sources": ["prediction"],
                             "datasets": [DATASET]})
    assert [(r["key"], [o["label"] for o in r["objects"]]) for r in predicted["results"]] == [("a.jpg", ["car"])]
    big = search(api, {"query": {"text": "x"}, "level": "objects", "min_box_area": 20000, "datasets": [DATASET]})
    assert [r["key"] for r in big["results"]] == ["b.jpg"]
    assert "filters.labels applies to object entries" in problem(
        api, {"query": {"text": "x"}, "labels": ["bus"], "level": "images"}, 422)

    query = {"query": {"text": "a street"}, "datasets": [DATASET]}
    six = [r["key"] for r in search(api, {**query, "top_k": 6})["results"]]
    pages = [r["key"] for r in search(api, {**query, "top_k": 3})["results"]] + \
        [r["key"] for r in search(api, {**query, "top_k": 3, "offset": 3})["results"]]
    assert pages == six
    threshold = search(api, {**query, "top_k": 8})["results"][3]["score"]
    assert all(r["score"] >= threshold for r in search(api, {**query, "min_score": threshold})["results"])
    assert len(search(api, {**query, "min_score": threshold})["results"]) == 4


@pytest.mark.parametrize("body, status, words", [
    ({"query": {"text": "x"}, "datasets": ["nope"]}, 404, "no dataset 'nope'"),
    ({"query": {"image": {"dataset": DATASET, "key": "missing.jpg"}}}, 404, "missing.jpg"),
    ({"query": {"object": {"dataset": DATASET, "key": "a.jpg", "box": [400, 10, 500, 50]}}}, 422, "lies outside"),
    ({"query": {"object": {"dataset": DATASET, "key": "a.jpg", "box": [50, 10, 20, 50]}}}, 422, "empty or inverted"),
    ({"query": {"object": {"dataset": DATASET, "key": "a.jpg"}}}, 422, "needs a box"),
    ({"query": {"text": "   "}}, 422, "query.text is empty"),
    ({"query": {"text": "x" * 1001}}, 422, "over the limit of 1000"),
    ({"query": {"image": {"data": "not base64!"}}}, 422, "query.image.data is not valid base64"),
    ({"query": {"image": {"data": base64.b64encode(b"plain text").decode()}}}, 422, "not an image"),
    ({"query": {"text": "x"}, "top_k": 1001}, 422, "top_k"),
    ({"query": {"text": "x"}, "offset": -1}, 422, "offset"),
    ({"query": {"text": "x", "image": {"dataset": DATASET, "key": "a.jpg"}}}, 422, "exactly one"),
    ({"query": {"image": {"data": base64.b64encode(bytes(20 * 1024 * 1024 + 1)).decode()}}}, 413, "over the 20971520-byte"),
])
def test_bad_queries_get_problem_details_naming_the_fault(api, images, body, status, words):
    assert words in problem(api, body, status)


def test_malformed_json_is_a_422(api):
    reply = api.post("/v1/search", content=b"{oops", headers={**key_of("reader"), "content-type": "application/json"})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"


def test_authentication_roles_and_dataset_scopes(api, images):
    assert api.post("/v1/search", json={"query": {"text": "x"}}).status_code == 401
    assert api.post("/v1/search", json={"query": {"text": "x"}},
                    headers={"Authorization": "Bearer nope"}).json()["detail"] == "unknown API key"
    assert api.post(f"/v1/datasets/{DATASET}/scan", headers=key_of("reader")).status_code == 403
    assert api.delete(f"/v1/datasets/{DATASET}", headers=key_of("writer")).status_code == 403

    scoped = search(api, {"query": {"text": "a bus"}, "top_k": 50}, key="street-only")
    assert all(r["dataset"] == "street" for r in scoped["results"])
    assert "may not see dataset 'search'" in problem(
        api, {"query": {"text": "x"}, "datasets": [DATASET]}, 403, key="street-only")
    sneaky = {"all": [{"query": {"text": "x"}}, {"query": {"image": {"dataset": DATASET, "key": "a.jpg"}}}]}
    problem(api, {"query": sneaky, "datasets": ["street"]}, 403, key="street-only")
    assert api.get(f"/v1/images/{DATASET}/a.jpg", headers=key_of("street-only")).status_code == 403
    names = [d["name"] for d in api.get("/v1/datasets", headers=key_of("street-only")).json()["datasets"]]
    assert DATASET not in names
    assert api.get(f"/v1/datasets/{DATASET}", headers=key_of("street-only")).status_code == 403


def test_rate_limit_per_key(api):
    statuses = [api.get("/v1/model", headers=key_of("flood")).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[-1] == 429
    limited = api.get("/v1/model", headers=key_of("flood"))
    assert int(limited.headers["retry-after"]) >= 1 and "5 requests per minute" in limited.json()["detail"]
    assert api.get("/v1/model", headers=key_of("reader")).status_code == 200, "other keys are unaffected"


def test_grpc_gives_what_http_gives(stack, api, images):
    body = {"query": {"text": "a dog in a park"}, "datasets": [DATASET], "top_k": 5}
    http_results = [(r["key"], round(r["score"], 5)) for r in search(api, body)["results"]]
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        metadata = (("authorization", f"Bearer {TEST_KEYS['reader'][0]}"),)
        reply = gateway.Search(query_pb2.SearchRequest(
            query=query_pb2.QueryTerm(text="a dog in a park"), filters=query_pb2.Filters(datasets=[DATASET]),
            top_k=5), metadata=metadata, timeout=60)
        assert [(r.key, round(r.score, 5)) for r in reply.results] == http_results
        chunks = list(gateway.GetImage(gateway_pb2.GetImageRequest(ref=common_pb2.ObjectRef(
            dataset=DATASET, key="c.jpg")), metadata=metadata, timeout=60))
        assert chunks[0].content_type == "image/jpeg" and b"".join(c.data for c in chunks) == images["c.jpg"]
        with pytest.raises(grpc.RpcError) as error:
            gateway.Search(query_pb2.SearchRequest(query=query_pb2.QueryTerm(text="x")), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as error:
            gateway.Search(query_pb2.SearchRequest(query=query_pb2.QueryTerm(text="x"), top_k=5000),
                           metadata=metadata, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "top_k" in error.value.details()


def test_health_readiness_metrics_model_and_embeddings(stack, api, images, dimension):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    metrics = httpx.get(f"http://127.0.0.1:{stack.settings.gateway_metrics_port}/metrics").text
    assert "vizsearch_grpc_requests_total" in metrics, "on the metrics port, not the public one"
    model = api.get("/v1/model", headers=key_of("reader")).json()
    assert model["dimension"] == dimension and model["version"] and model["runtime"] == "cpu-onnx-int8"
    vectors = api.post("/v1/embeddings", json={"texts": ["a bus", "a dog"]}, headers=key_of("reader")).json()
    assert len(vectors["vectors"]) == 2 and len(vectors["vectors"][0]) == dimension
    by_ref = api.post("/v1/embeddings", json={"images": [{"dataset": DATASET, "key": "a.jpg", "box": [0, 0, 50, 50]}]},
                      headers=key_of("reader"))
    assert by_ref.status_code == 200 and len(by_ref.json()["vectors"][0]) == dimension
    assert api.get("/docs").status_code == 200 and "/v1/search" in api.get("/openapi.json").json()["paths"]
