"""What the HTTP API gained for the web app, on the real test stack: thumbnails and crops
(kept, cached by ETag), keys that round-trip through result URLs whatever they hold,
https URLs behind a TLS proxy, and documentation that works offline and declares the
API's security and errors."""

import base64
import io
import re
import time
from urllib.parse import quote

import grpc
import httpx
import pytest
from PIL import Image

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from services.common.storage import ObjectStore
from tests import imagegen
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.stack
DATASET = "odd-keys"
KEY = "folder one/a #1?%&+.jpg"
W, H = 640, 480
ADMIN = {"Authorization": f"Bearer {TEST_KEYS['admin'][0]}"}


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.gateway_http_port}", timeout=60,
                      headers=ADMIN) as client:
        yield client


@pytest.fixture(scope="module")
def indexed(stack, api):
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))
    store.put(DATASET, KEY, imagegen.encode(imagegen.scene(W, H, seed=77)), "image/jpeg")
    job = api.post(f"/v1/datasets/{DATASET}/scan").json()
    deadline = time.monotonic() + 120
    while (job := api.get(f"/v1/jobs/{job['id']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert job["done"] == 1, job
    return store


def image_path(key: str = KEY) -> str:
    return f"/v1/images/{quote(DATASET, safe='')}/{quote(key, safe='/')}"


def test_a_key_with_reserved_characters_round_trips_through_the_result_url(api, indexed):
    reply = api.post("/v1/search", json={"query": {"text": "a road"}, "datasets": [DATASET]}).json()
    [result] = reply["results"]
    assert result["key"] == KEY
    assert result["url"].endswith(image_path()) and "%23" in result["url"] and "%3F" in result["url"]
    fetched = httpx.get(result["url"], headers=ADMIN)
    assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).size == (W, H)


def test_behind_a_tls_proxy_result_urls_say_https(api, indexed):
    reply = api.post("/v1/search", json={"query": {"text": "a road"}, "datasets": [DATASET]},
                     headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}).json()
    assert reply["results"][0]["url"].startswith("https://")


def test_a_thumbnail_is_small_cached_and_revalidated(api, indexed, stack):
    reply = api.get(image_path(), params={"size": 160}, headers={"Accept": "image/webp,*/*"})
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/webp"
    thumbnail = Image.open(io.BytesIO(reply.content))
    assert thumbnail.size == (160, 120)
    assert "max-age" in reply.headers["cache-control"] and "private" in reply.headers["cache-control"]
    etag = reply.headers["etag"]
    assert api.get(image_path(), params={"size": 160}, headers={"Accept": "image/webp", "If-None-Match": etag}
                   ).status_code == 304
    kept = list(indexed.client.list_objects(indexed.bucket, prefix=".thumbnails/", recursive=True))
    assert any(etag.strip('"') in o.object_name for o in kept), "rendered once, then kept in the bucket"
    again = api.get(image_path(), params={"size": 160}, headers={"Accept": "image/webp"})
    assert again.content == reply.content and again.headers["etag"] == etag
    jpeg = api.get(image_path(), params={"size": 160, "format": "jpeg"})
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.headers["etag"] != etag
    assert api.get(image_path(), params={"size": 160}).headers["content-type"] == "image/jpeg", \
        "a client that does not accept WebP gets JPEG"


def test_a_crop_of_a_box(api, indexed):
    reply = api.get(image_path(), params={"box": "100,50,300,150", "size": 400, "format": "jpeg"})
    assert reply.status_code == 200 and Image.open(io.BytesIO(reply.content)).size == (200, 100)


@pytest.mark.parametrize("params, words", [
    ({"size": 5}, "size is 5: give 16 to 1024 pixels"),
    ({"size": 4096}, "size is 4096"),
    ({"box": "1,2,3"}, "give x1,y1,x2,y2"),
    ({"box": "0,0,9999,10"}, "outside the 640x480 image"),
    ({"format": "gif", "size": 64}, "format"),
])
def test_bad_thumbnail_requests_are_refused_naming_the_problem(api, indexed, params, words):
    reply = api.get(image_path(), params=params)
    assert reply.status_code == 422 and words in reply.json()["detail"], reply.text


def test_a_thumbnail_of_an_image_that_does_not_exist_is_404(api, indexed):
    assert api.get(image_path("nope.jpg"), params={"size": 64}).status_code == 404


def test_the_api_docs_work_offline(api):
    page = api.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert sources and all(s.startswith("/") for s in sources), f"everything from the gateway itself: {sources}"
    for source in sources:
        if source.startswith("/static/"):
            assert api.get(source).status_code == 200, source
    assert api.get("/redoc").status_code == 200


def test_the_openapi_document_declares_bearer_keys_and_problem_details(api):
    document = api.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    search = document["paths"]["/v1/search"]["post"]
    assert search["security"]
    for status in ("401", "403", "404", "413", "422", "429", "503", "504"):
        assert "application/problem+json" in search["responses"][status]["content"], status
    assert document["components"]["schemas"]["Problem"]["required"] == ["title", "status", "detail"]


def test_the_web_app_is_served_with_its_modules(api):
    page = api.get("/")
    assert page.status_code == 200 and '<script type="module" src="/app/app.js">' in page.text
    for module in ("app.js", "api.js", "search.js", "viewer.js", "datasets.js", "query.js", "dom.js", "app.css"):
        assert api.get(f"/app/{module}").status_code == 200, module


def test_the_workers_render_the_grid_thumbnail_as_they_index(indexed):
    from services.common import thumbnails
    from services.common.storage import signature

    stat = indexed.stat(DATASET, KEY)
    name = thumbnails.name(DATASET, KEY, signature(stat.size, stat.etag, stat.last_modified), thumbnails.GRID_SIZE,
                           None, thumbnails.GRID_FORMAT)
    kept = indexed.fetch(thumbnails.PREFIX, name, 10**6).data
    assert Image.open(io.BytesIO(kept)).size == (256, 192)


def test_a_page_of_thumbnails_comes_in_one_request_each_with_its_own_error(api, indexed):
    reply = api.post("/v1/thumbnails", json={"images": [{"dataset": DATASET, "key": KEY},
                                                        {"dataset": DATASET, "key": "missing.jpg"},
                                                        {"dataset": DATASET, "key": KEY, "box": [0, 0, 64, 48]}],
                                             "size": 128, "format": "webp"}).json()
    first, missing, crop = reply["thumbnails"]
    assert first["content_type"] == "image/webp" and first["etag"] and first["error"] is None
    assert Image.open(io.BytesIO(base64.b64decode(first["data"]))).size == (128, 96)
    assert missing["data"] == "" and missing["error"]["status"] == 404 and "missing.jpg" in missing["error"]["detail"]
    assert Image.open(io.BytesIO(base64.b64decode(crop["data"]))).size == (64, 48)
    too_many = api.post("/v1/thumbnails", json={"images": [{"dataset": DATASET, "key": KEY}] * 101})
    assert too_many.status_code == 422 and "images" in too_many.json()["detail"]


def test_thumbnails_over_grpc_match_http(stack, api, indexed):
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        ref = common_pb2.ObjectRef(dataset=DATASET, key=KEY)
        reply = stub.GetThumbnails(gateway_pb2.GetThumbnailsRequest(images=[
            gateway_pb2.GetImageRequest(ref=ref, size=128, format="webp"),
            gateway_pb2.GetImageRequest(ref=common_pb2.ObjectRef(dataset=DATASET, key="missing.jpg"))]),
            metadata=[("authorization", ADMIN["Authorization"])], timeout=30)
        chunks = list(stub.GetImage(gateway_pb2.GetImageRequest(ref=ref, size=128, format="webp"),
                                    metadata=[("authorization", ADMIN["Authorization"])], timeout=30))
    http = api.post("/v1/thumbnails", json={"images": [{"dataset": DATASET, "key": KEY}], "size": 128,
                                            "format": "webp"}).json()["thumbnails"][0]
    assert reply.thumbnails[0].data == base64.b64decode(http["data"]) == chunks[0].data
    assert reply.thumbnails[1].error.code == grpc.StatusCode.NOT_FOUND.value[0]
