"""The embedder with a Triton that decodes JPEGs (what a GPU Triton says: jpeg_decode
"triton"), on the real servers: a second Triton and embedder, run on the CPU with
VIZSEARCH_JPEG_DECODE=triton, beside the session's stack (whose Triton says "embedder").
Upright RGB JPEGs go to clip_jpeg as bytes; everything else keeps the embedder's path;
both give the same vectors."""

import grpc
import numpy as np
import pytest

from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests import imagegen
from tests.conftest import TEST_PORT_SHIFT

pytestmark = pytest.mark.stack
BOXES = [common_pb2.Box(x1=10, y1=20, x2=300, y2=200), common_pb2.Box(x1=600, y1=400, x2=700, y2=900),
         common_pb2.Box(x1=2000, y1=0, x2=2100, y2=10), common_pb2.Box(x1=500, y1=300, x2=900, y2=700)]


@pytest.fixture(scope="module")
def triton_decoding(tmp_path_factory, model_dir, embedder):
    ports = StackSettings.shifted_ports(TEST_PORT_SHIFT + 2_000)
    settings = StackSettings(run_dir=tmp_path_factory.mktemp("jpeg-decode"), model=str(model_dir),
                             jpeg_decode="triton", **ports)
    stack = Stack(settings, only=["storage", "triton", "embedder"])
    try:
        stack.up(log=print, supervise=False)
        with grpc.insecure_channel(f"127.0.0.1:{settings.embedder_port}") as channel:
            yield embedder_pb2_grpc.EmbedderStub(channel)
    finally:
        stack.down(log=print)


def embed(stub, items, **options):
    return stub.EmbedImages(embedder_pb2.EmbedImagesRequest(images=items, **options), timeout=120).results


def vectors(result) -> list[np.ndarray]:
    return [np.array(result.vector.values)] + [np.array(b.vector.values) for b in result.boxes if b.HasField("vector")]


def test_the_model_says_triton_decodes(triton_decoding, embedder):
    request = embedder_pb2.GetModelInfoRequest()
    assert triton_decoding.GetModelInfo(request, timeout=30).jpeg_decode == "triton"
    assert embedder.GetModelInfo(request, timeout=30).jpeg_decode == "embedder"


def test_images_boxes_and_crops_match_the_embedders_own_decoding(triton_decoding, embedder):
    picture = imagegen.scene(1280, 720, seed=7)
    items = [
        common_pb2.ImageInput(data=imagegen.encode(picture, "JPEG", quality=90), boxes=BOXES, box_margin=0.1),
        common_pb2.ImageInput(data=imagegen.encode(picture.convert("L"), "JPEG"), boxes=BOXES[:2]),
        common_pb2.ImageInput(data=imagegen.encode(picture, "JPEG"), box=BOXES[3]),
        common_pb2.ImageInput(data=imagegen.exif_rotated_jpeg(picture), boxes=BOXES[:1]),  # the embedder's path
        common_pb2.ImageInput(data=imagegen.encode(picture, "PNG"), boxes=BOXES[:1]),  # the embedder's path
    ]
    ours, theirs = embed(triton_decoding, items), embed(embedder, items)
    for mine, reference in zip(ours, theirs):
        assert (mine.width, mine.height, mine.sha256) == (reference.width, reference.height, reference.sha256)
        assert [b.WhichOneof("result") for b in mine.boxes] == [b.WhichOneof("result") for b in reference.boxes]
        assert [b.box for b in mine.boxes] == [b.box for b in reference.boxes]
        for a, b in zip(vectors(mine), vectors(reference), strict=True):
            assert float(a @ b) >= 0.99
    assert ours[0].boxes[2].error.message == theirs[0].boxes[2].error.message  # outside the image, named
    assert "lies outside the 1280x720 image" in ours[0].boxes[2].error.message


def test_a_jpeg_triton_cannot_decode_is_judged_by_the_embedder(triton_decoding):
    good = imagegen.encode(imagegen.scene(320, 240, seed=1), "JPEG")
    truncated = good[: len(good) // 2]
    results = embed(triton_decoding, [common_pb2.ImageInput(data=truncated), common_pb2.ImageInput(data=good)])
    assert [r.WhichOneof("result") for r in results] == ["error", "vector"]
    assert results[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "truncated" in results[0].error.message
