"""The embedder over real gRPC, on the real stack: contract, bad input, plumbing."""

import json
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2
from services.common.storage import ObjectStore
from tests import imagegen

pytestmark = pytest.mark.stack
JPEG = imagegen.encode(imagegen.scene(320, 240, seed=1), "JPEG")


def image(data=JPEG, box=None, ref=None):
    if ref is not None:
        return common_pb2.ImageInput(ref=common_pb2.ObjectRef(dataset=ref[0], key=ref[1]), box=box)
    return common_pb2.ImageInput(data=data, box=box)


def assert_same_embedding(ours, theirs) -> None:
    """The same input's vectors from two calls: equal but for the int8 runtime's
    dependence on batch mates (activations are quantised per batch)."""
    assert float(np.dot(ours, theirs)) >= 0.999


def test_model_info_describes_the_checkpoint(embedder, dimension):
    info = embedder.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=30)
    assert (info.dimension, info.image_size, info.max_text_tokens) == (dimension, 224, 77)
    assert len(info.version) == 16 and info.model_id == "vizsearch-demo-clip"
    assert info.runtime == "cpu-onnx-int8", "the local stack's Triton has no GPU and runs the default CPU runtime"


def test_texts_embed_to_unit_vectors_in_order(embedder, dimension):
    texts = ["a bus at night", "a taxi", "a dog on a crosswalk"]
    reply = embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=texts), timeout=60)
    vectors = np.array([v.values for v in reply.vectors])
    assert vectors.shape == (3, dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=["a taxi"]), timeout=60)
    np.testing.assert_allclose(single.vectors[0].values, vectors[1], atol=1e-5)


def test_a_batch_larger_than_tritons_is_split_and_kept_in_order(embedder):
    scenes = [imagegen.encode(imagegen.scene(64, 64, seed=i)) for i in range(260)]
    reply = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[image(d) for d in scenes]), timeout=120)
    assert len(reply.results) == 260 and all(r.WhichOneof("result") == "vector" for r in reply.results)
    alone = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[image(scenes[259])]), timeout=60)
    assert_same_embedding(alone.results[0].vector.values, reply.results[259].vector.values)
    batch = np.array([r.vector.values for r in reply.results])
    assert int(np.argmax(batch @ np.array(alone.results[0].vector.values))) == 259, "kept in order"


def test_one_bad_image_fails_only_its_item(embedder):
    items = [image(), image(b"not an image"), image(b""), image(JPEG, box=common_pb2.Box(x1=10, y1=10, x2=900, y2=20)),
             image(JPEG, box=common_pb2.Box(x1=50, y1=50, x2=40, y2=60)), image(JPEG, box=common_pb2.Box(x1=0, y1=0, x2=64, y2=64))]
    results = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=items), timeout=60).results
    assert [r.WhichOneof("result") for r in results] == ["vector", "error", "error", "error", "error", "vector"]
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [r.error.code for r in results[1:5]] == [invalid] * 4
    assert "not an image" in results[1].error.message
    assert "empty file" in results[2].error.message
    assert "outside the 320x240 image" in results[3].error.message
    assert "empty or inverted" in results[4].error.message
    assert (results[0].width, results[0].height) == (320, 240) and len(results[0].sha256) == 64


def test_an_image_and_its_boxes_embed_from_one_call_as_they_would_one_by_one(embedder):
    """The multi-box form: the image's vector and one per box, each equal to what the
    single-crop form gives for the same (clipped) box and margin; a bad box fails alone."""
    boxes = [common_pb2.Box(x1=10, y1=20, x2=120, y2=140), common_pb2.Box(x1=-30, y1=100, x2=90, y2=400),
             common_pb2.Box(x1=500, y1=10, x2=600, y2=50), common_pb2.Box(x1=200, y1=30, x2=310, y2=200)]
    item = common_pb2.ImageInput(data=JPEG, boxes=boxes, box_margin=0.1)
    reply = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[item, image()]), timeout=60)
    whole, plain = reply.results
    assert [b.WhichOneof("result") for b in whole.boxes] == ["vector", "vector", "error", "vector"]
    assert "lies outside the 320x240 image" in whole.boxes[2].error.message
    clipped = whole.boxes[1].box
    assert (clipped.x1, clipped.y1, clipped.x2, clipped.y2) == (0, 100, 90, 240)
    assert_same_embedding(whole.vector.values, plain.vector.values)
    assert not plain.boxes
    one_by_one = [common_pb2.ImageInput(data=JPEG, box=whole.boxes[i].box, box_margin=0.1) for i in (0, 1, 3)]
    alone = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=one_by_one), timeout=60).results
    for i, single in zip((0, 1, 3), alone):
        assert_same_embedding(whole.boxes[i].vector.values, single.vector.values)


def test_box_and_boxes_together_or_a_bad_box_under_fail_on_item_error_are_refused(embedder):
    both = common_pb2.ImageInput(data=JPEG, box=common_pb2.Box(x1=0, y1=0, x2=9, y2=9),
                                 boxes=[common_pb2.Box(x1=0, y1=0, x2=9, y2=9)])
    result = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[both]), timeout=60).results[0]
    assert result.WhichOneof("result") == "error" and "not both" in result.error.message
    bad_second = common_pb2.ImageInput(data=JPEG, boxes=[common_pb2.Box(x1=0, y1=0, x2=9, y2=9),
                                                         common_pb2.Box(x1=9, y1=0, x2=0, y2=9)])
    with pytest.raises(grpc.RpcError) as raised:
        embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[bad_second], fail_on_item_error=True),
                             timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("images[0].boxes[1]: ") and "empty or inverted" in raised.value.details()
    crowded = common_pb2.ImageInput(data=JPEG, boxes=[common_pb2.Box(x1=0, y1=0, x2=9, y2=9)] * 1024)
    with pytest.raises(grpc.RpcError) as raised:
        embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[crowded]), timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "images and their boxes has 1025 items" in raised.value.details()


def test_fail_on_item_error_names_the_item(embedder):
    with pytest.raises(grpc.RpcError) as raised:
        embedder.EmbedImages(
            embedder_pb2.EmbedImagesRequest(images=[image(), image(b"\x89PNG garbage")], fail_on_item_error=True),
            timeout=60,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("images[1]: ")


@pytest.mark.parametrize(
    "request_, message",
    [
        (embedder_pb2.EmbedTextsRequest(texts=[]), "texts is empty"),
        (embedder_pb2.EmbedTextsRequest(texts=["ok", "  "]), "texts[1] is empty"),
        (embedder_pb2.EmbedTextsRequest(texts=["x" * 2001]), "texts[0] has 2001 characters"),
        (embedder_pb2.EmbedTextsRequest(texts=["a"] * 1025), "over the limit of 1024"),
    ],
    ids=["no-texts", "blank-text", "long-text", "too-many"],
)
def test_bad_text_requests_are_invalid_argument(embedder, request_, message):
    with pytest.raises(grpc.RpcError) as raised:
        embedder.EmbedTexts(request_, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in raised.value.details()


def test_oversize_image_is_refused(embedder):
    huge = JPEG + b"\0" * (20 * 1024 * 1024)
    reply = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[image(huge)]), timeout=60)
    assert "over the 20971520-byte limit" in reply.results[0].error.message


def test_images_by_reference_come_from_object_storage(stack, embedder):
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))
    store.put("refs", "street/one.jpg", JPEG, "image/jpeg")
    by_ref, missing = embedder.EmbedImages(
        embedder_pb2.EmbedImagesRequest(images=[image(ref=("refs", "street/one.jpg")), image(ref=("refs", "nope.jpg"))]),
        timeout=60,
    ).results
    by_value = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=[image()]), timeout=60).results[0]
    assert_same_embedding(by_ref.vector.values, by_value.vector.values)
    assert missing.error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no object refs/nope.jpg" in missing.error.message


def test_deadline_is_honoured(embedder):
    many = [image(imagegen.encode(imagegen.scene(640, 480, seed=i))) for i in range(256)]
    with pytest.raises(grpc.RpcError) as raised:
        embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=many), timeout=0.2)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_health_and_reflection(embedder_channel):
    health = health_pb2_grpc.HealthStub(embedder_channel)
    for service in ("", "vizsearch.v1.Embedder"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(embedder_channel)
    replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"vizsearch.v1.Embedder", "grpc.health.v1.Health"} <= names


def test_request_id_travels_and_is_logged(stack, embedder):
    _, call = embedder.EmbedTexts.with_call(
        embedder_pb2.EmbedTextsRequest(texts=["traced"]), metadata=[("x-request-id", "test-rid-42")], timeout=30
    )
    assert ("x-request-id", "test-rid-42") in call.initial_metadata()
    lines = [json.loads(line) for line in stack.log_file("embedder").read_text().splitlines() if line.startswith("{")]
    assert any(l.get("request_id") == "test-rid-42" and l["method"] == "EmbedTexts" and l["code"] == "OK"
               for l in lines if l["msg"] == "rpc")


def test_metrics_are_exported(stack, embedder):
    embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=["counted"]), timeout=30)
    url = f"http://127.0.0.1:{stack.settings.embedder_metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    assert 'vizsearch_grpc_requests_total{code="OK",method="EmbedTexts",service="embedder"}' in text
    assert "vizsearch_grpc_request_seconds_bucket" in text
    assert 'vizsearch_embedder_batch_size_bucket{kind="text"' in text
    assert "vizsearch_grpc_in_flight" in text


def test_the_client_channel_passes_the_request_id_on(stack):
    import asyncio

    from services.common import grpc_client, logs
    from services.common.genproto.vizsearch.v1 import embedder_pb2_grpc

    async def call_as_part_of_a_request():
        logs.request_id.set("hop-rid-7")
        async with grpc_client.channel(f"127.0.0.1:{stack.settings.embedder_port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            await stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=30)

    asyncio.run(call_as_part_of_a_request())
    lines = [json.loads(line) for line in stack.log_file("embedder").read_text().splitlines() if line.startswith("{")]
    assert any(l.get("request_id") == "hop-rid-7" and l.get("method") == "GetModelInfo" for l in lines)
