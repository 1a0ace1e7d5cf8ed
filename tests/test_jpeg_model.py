"""clip_jpeg, the GPU path's image model, run on the CPU (device cpu) exactly as Triton's
python backend runs it: JPEG bytes and rectangles in, one vector per rectangle out,
faithful to the CPU path (the embedder's Pillow decode, crop and resize, then clip_image)."""

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from model import demo_data, device_preprocess, preprocess
from services.common import images
from services.localstack.config import DEMO_MODEL
from tests import imagegen, triton_python_models
from tests.bench import bench_gpu

DIM = 128  # the demo model's embedding dimension


@pytest.fixture(scope="module")
def models():
    patch = pytest.MonkeyPatch()
    patch.setitem(sys.modules, "triton_python_backend_utils", triton_python_models.backend_utils())
    patch.setenv("VIZSEARCH_MODEL_DIR", str(DEMO_MODEL))
    patch.setenv("VIZSEARCH_CPU_RUNTIME", "fp32")  # exact: the paths' preprocessing is what is compared
    yield triton_python_models.load("clip_image"), triton_python_models.load("clip_jpeg")
    patch.undo()


def scenes() -> list[tuple[bytes, list[images.Box]]]:
    """Annotated JPEGs of the demo generator's sizes (640x384, 1280x720, 1024x768), plus a greyscale one."""
    sprites = demo_data.emoji_sprites()
    out = []
    for seed, style in ((1, "classic"), (2, "shifted"), (3, "shifted")):
        for index in range(2):
            picture, placed, _ = demo_data.scene(seed, index, sprites, demo_data.STYLES[style])
            out.append((imagegen.encode(picture, "JPEG", quality=90), [images.Box(*p.box) for p in placed]))
    grey = imagegen.scene(1280, 720, seed=4).convert("L")
    out.append((imagegen.encode(grey, "JPEG"), [images.Box(100, 50, 400, 600), images.Box(0, 0, 1280, 30)]))
    return out


def cpu_path(clip_image, data: bytes, boxes: list[images.Box], margin: float) -> np.ndarray:
    image = images.decode(data, 10**8)
    crops = [image, *(images.crop(image, b, margin) for b in boxes)]
    pixels = np.stack([preprocess.to_model_pixels(c, 224) for c in crops])
    return triton_python_models.run(clip_image, "PIXELS", [pixels])


def regions(data: bytes, boxes: list[images.Box], margin: float) -> np.ndarray:
    width, height = Image.open(io.BytesIO(data)).size
    return np.array([[(0, 0, width, height), *(images.crop_rectangle(b, margin, width, height) for b in boxes)]],
                    dtype=np.float32)


def test_images_and_boxes_embed_as_the_cpu_path_does(models):
    clip_image, clip_jpeg = models
    annotated = scenes()
    assert sum(len(boxes) for _, boxes in annotated) >= 20
    # Every image one request, all in one execute: the dynamic batcher's ragged batch.
    requests = triton_python_models.requests_of(
        JPEG=[np.array([[data]], dtype=np.object_) for data, _ in annotated],
        REGIONS=[regions(data, boxes, 0.1) for data, boxes in annotated])
    responses = clip_jpeg.execute(requests)
    lowest = 1.0
    for (data, boxes), response in zip(annotated, responses):
        assert not response.has_error()
        ours = response.output_tensors[0].as_numpy()
        assert ours.shape == (1, 1 + len(boxes), DIM)
        reference = cpu_path(clip_image, data, boxes, 0.1)
        np.testing.assert_allclose(np.linalg.norm(ours[0], axis=1), 1.0, atol=1e-5)
        lowest = min(lowest, float((ours[0] * reference).sum(1).min()))
    assert lowest >= 0.99, lowest


def test_a_corrupt_jpeg_or_a_region_outside_fails_only_its_own_request(models):
    _, clip_jpeg = models
    good = imagegen.encode(imagegen.scene(320, 240, seed=1), "JPEG")
    truncated = good[: len(good) // 3]
    whole = np.array([[[0, 0, 320, 240]]], dtype=np.float32)
    requests = triton_python_models.requests_of(
        JPEG=[np.array([[d]], dtype=np.object_) for d in (good, truncated, good, b"not a jpeg")],
        REGIONS=[whole, whole, np.array([[[300, 0, 400, 50]]], dtype=np.float32), whole])
    responses = clip_jpeg.execute(requests)
    assert [r.has_error() for r in responses] == [False, True, True, True]
    assert "does not decode" in responses[1].error().message()
    assert "not inside the 320x240 image" in responses[2].error().message()
    assert responses[0].output_tensors[0].as_numpy().shape == (1, 1, DIM)


def test_a_request_of_several_images_gets_one_row_each(models):
    _, clip_jpeg = models
    jpegs = [imagegen.encode(imagegen.scene(200, 100, seed=s), "JPEG") for s in range(3)]
    boxes = np.array([[[0, 0, 200, 100], [10, 10, 60, 90]]] * 3, dtype=np.float32)
    together = clip_jpeg.execute(triton_python_models.requests_of(
        JPEG=[np.array([[j] for j in jpegs], dtype=np.object_)], REGIONS=[boxes]))
    alone = clip_jpeg.execute(triton_python_models.requests_of(
        JPEG=[np.array([[jpegs[2]]], dtype=np.object_)], REGIONS=[boxes[2:]]))
    rows = together[0].output_tensors[0].as_numpy()
    assert rows.shape == (3, 2, DIM)
    np.testing.assert_allclose(rows[2], alone[0].output_tensors[0].as_numpy()[0], atol=1e-5)


@pytest.mark.skipif(device_preprocess.jpeg_decoder() != "torchvision",
                    reason="PyPI's torchvision imports only beside torch's CUDA build: make test runs this "
                           "module again in .venv-torchvision")
def test_torchvision_decodes_batches_as_pillow_does():
    """The Triton image's decoder (nvJPEG on a GPU, libjpeg here) against the CPU path's Pillow."""
    jpegs = [imagegen.encode(imagegen.scene(w, h, seed=s), "JPEG", quality=q)
             for s, (w, h, q) in enumerate([(640, 480, 90), (1280, 720, 75), (333, 201, 95)])]
    jpegs.append(imagegen.encode(imagegen.scene(300, 200, seed=9).convert("L"), "JPEG"))
    decoded = device_preprocess.decode_jpegs([*jpegs, jpegs[0][:500]], "cpu")
    assert isinstance(decoded[-1], device_preprocess.BadJpeg)  # a truncated one fails alone
    for data, image in zip(jpegs, decoded):
        expected = np.asarray(images.decode(data, 10**8).convert("RGB")).transpose(2, 0, 1)
        assert tuple(image.shape) == expected.shape and image.dtype.is_floating_point is False
        # Identical here; another libjpeg build may round an odd pixel differently.
        assert np.abs(image.numpy().astype(np.int16) - expected).mean() < 1.0


def test_the_centre_square_is_what_clip_keeps_of_a_region():
    assert device_preprocess.centre_square((0, 0, 1280, 720)) == (280, 0, 1000, 720)
    assert device_preprocess.centre_square((10, 20, 40, 120)) == (10, 55, 40, 85)


def test_metadata_says_who_decodes_jpegs(models, monkeypatch):
    for choice, expected in (("auto", "embedder"), ("triton", "triton"), ("embedder", "embedder")):
        monkeypatch.setenv("VIZSEARCH_JPEG_DECODE", choice)
        assert json.loads(triton_python_models.load("clip_metadata").document[0])["jpeg_decode"] == expected
    monkeypatch.setenv("VIZSEARCH_JPEG_DECODE", "gpu")
    with pytest.raises(ValueError, match="VIZSEARCH_JPEG_DECODE='gpu'"):
        triton_python_models.load("clip_metadata")


def test_make_bench_gpu_measures_every_figure_on_the_cpu(models):
    results = bench_gpu.measure(DEMO_MODEL, "cpu", seconds=0, batches=(2, 4), jpeg_batch=3, distinct=2)
    assert results["jpeg_decoder"] in ("torchvision", "pillow")
    assert results["lowest_cosine"]["clip_jpeg vs cpu path (1280x720, 10 boxes)"] >= 0.99
    assert set(results["model_only_images_per_s"]) == {2, 4} and results["model_only_best"]["images_per_s"] > 0
    compiled = results["model_only_compiled"]
    assert compiled["compiled"] and compiled["batch"] == results["model_only_best"]["batch"]
    assert compiled["images_per_s"] > 0
    assert compiled["lowest_cosine_to_eager"] >= 0.999
    assert set(results["jpeg_to_vectors_images_per_s"]) == {"640x480", "1280x720"}
    annotated = results["annotated_1280x720_10_boxes"]
    assert annotated["boxes_per_s"] == pytest.approx(annotated["images_per_s"] * 10, rel=0.01)
    assert results["texts_per_s_batch_256"] > 0 and results["model_only_best"]["share_of_matmul_rate"] > 0
