"""Decoding and preprocessing: every awkward file is either embedded correctly or
refused with a reason, and pixels match transformers' CLIPImageProcessor."""

import io
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageOps
from transformers import CLIPImageProcessor

from services.common import images
from model import preprocess
from model.checkpoints import write_image_processor
from tests import imagegen

MAX_PIXELS = 50_000_000


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("processor")
    write_image_processor(path, 224)
    return CLIPImageProcessor.from_pretrained(path)


def normalised(pixels: np.ndarray, processor) -> np.ndarray:
    """What the Triton model computes from the uint8 pixels, channel-first."""
    mean, std = np.array(processor.image_mean), np.array(processor.image_std)
    return ((pixels / 255.0 - mean) / std).transpose(2, 0, 1)


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (224, 224), (1000, 333), (97, 301), (12, 9)])
def test_pixels_match_clip_image_processor(reference, size):
    image = imagegen.scene(*size, seed=sum(size))
    ours = normalised(preprocess.to_model_pixels(image, 224), reference)
    theirs = reference(images=image, return_tensors="np")["pixel_values"][0]
    assert ours.shape == theirs.shape == (3, 224, 224)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_exif_orientation_is_applied():
    upright = imagegen.scene(300, 200, seed=1)
    decoded = images.decode(imagegen.exif_rotated_jpeg(upright), MAX_PIXELS)
    assert decoded.size == (300, 200)
    difference = np.abs(np.asarray(decoded, dtype=int) - np.asarray(upright, dtype=int)).mean()
    assert difference < 8  # JPEG loss only


@pytest.mark.parametrize(
    "data",
    [
        imagegen.encode(imagegen.scene(64, 48, 2).convert("L"), "PNG"),
        imagegen.encode(imagegen.scene(64, 48, 2).convert("CMYK"), "JPEG"),
        imagegen.sixteen_bit_png(64, 48),
        imagegen.palette_png_with_transparency(64, 48),
        imagegen.encode(imagegen.scene(64, 48, 2).convert("RGBA"), "PNG"),
        imagegen.encode(imagegen.scene(64, 48, 2), "WEBP"),
        imagegen.encode(imagegen.scene(64, 48, 2), "BMP"),
        imagegen.encode(imagegen.scene(64, 48, 2), "TIFF"),
        imagegen.encode(imagegen.scene(64, 48, 2), "GIF"),
    ],
    ids=["grayscale", "cmyk", "16-bit", "palette-transparent", "rgba", "webp", "bmp", "tiff", "gif"],
)
def test_any_mode_becomes_rgb(data):
    decoded = images.decode(data, MAX_PIXELS)
    assert decoded.mode == "RGB" and decoded.size == (64, 48)


def test_sixteen_bit_keeps_its_range():
    pixels = np.asarray(images.decode(imagegen.sixteen_bit_png(256, 4), MAX_PIXELS))
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255 and 100 < pixels[0, 128, 0] < 155


def test_transparency_becomes_white():
    clear = Image.new("RGBA", (8, 8), (10, 200, 10, 0))
    assert np.asarray(images.decode(imagegen.encode(clear, "PNG"), MAX_PIXELS)).min() == 255


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"this is a text file, not an image", "not an image in a known format"),
        (imagegen.encode(imagegen.scene(200, 200, 4))[:3000], "corrupt or truncated"),
    ],
    ids=["zero-byte", "not-an-image", "truncated"],
)
def test_bad_files_are_refused_with_a_reason(data, reason):
    with pytest.raises(images.BadImage, match=reason):
        images.decode(data, MAX_PIXELS)


def test_decompression_bomb_is_refused_before_decoding():
    # 10000 x 10000 of one colour compresses to a few kB but would decode to 300 MB.
    bomb = imagegen.encode(Image.new("L", (10_000, 10_000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(images.BadImage, match="over the limit"):
        images.decode(bomb, MAX_PIXELS)


def test_decoding_memory_counts_the_mode_and_is_refused_from_the_header():
    deep = imagegen.encode(Image.new("I;16", (4000, 3000)), "PNG")  # small on disk, 2 bytes a pixel decoded
    header, needed = images.open_image(deep, MAX_PIXELS, 2**31)
    assert needed == 4000 * 3000 * (2 + 3) and header.mode == "I;16"
    with pytest.raises(images.BadImage, match=r"4000x3000 in mode I;16: decoding it takes about 57 MiB, over the "
                                              r"limit of 50 MiB"):
        images.open_image(deep, MAX_PIXELS, 50 * 2**20)


def test_a_large_16_bit_image_decodes_in_bounded_memory(tmp_path):
    """The issue's 7000x7000 16-bit PNG took about 1 GB to decode (float64 copies); its pixels
    and their RGB copy are 245 MB."""
    path = tmp_path / "deep.png"
    ramp = np.tile(np.linspace(0, 65535, 7000, dtype=np.uint16), (7000, 1))
    Image.fromarray(ramp).save(path)
    script = ("import resource, sys; from pathlib import Path; from services.common import images; "
              f"image = images.decode(Path({str(path)!r}).read_bytes(), 50_000_000); "
              "print(image.size, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    before = "import resource; import services.common.images; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    base = int(subprocess.run([sys.executable, "-c", before], capture_output=True, text=True, check=True).stdout)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["(7000,", "7000)"]
    assert int(out[2]) - base < 400, f"decoding took {int(out[2]) - base} MiB"


def test_the_decode_budget_makes_large_decodes_wait_their_turn():
    budget = images.DecodeBudget(1000)
    inside, most = [], []

    def decode(size):
        with budget.reserve(size):
            inside.append(size)
            most.append(sum(inside))
            time.sleep(0.05)
            inside.remove(size)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(decode, [600, 600, 300, 5000]))
    assert all(held <= 1000 or held == 5000 for held in most), most  # 5000 only alone
    assert budget.used == 0


def test_crop_takes_the_box():
    image = Image.fromarray(np.arange(100 * 80 * 3, dtype=np.uint32).reshape(80, 100, 3).astype(np.uint8))
    cropped = images.crop(image, images.Box(10, 20, 30.5, 60))
    assert cropped.size == (21, 40)
    assert np.array_equal(np.asarray(cropped), np.asarray(image)[20:60, 10:31])


def test_a_margin_grows_the_box_within_the_image():
    assert images.grow(images.Box(10, 10, 30, 50), 0.1, 100, 100) == images.Box(8, 6, 32, 54)
    assert images.grow(images.Box(0, 0, 100, 100), 0.1, 100, 100) == images.Box(0, 0, 100, 100)
    image = Image.fromarray(np.arange(100 * 80 * 3, dtype=np.uint32).reshape(80, 100, 3).astype(np.uint8))
    cropped = images.crop(image, images.Box(10, 20, 30, 60), margin=0.25)
    assert np.array_equal(np.asarray(cropped), np.asarray(image)[10:70, 5:35])
    with pytest.raises(images.BadImage, match="box margin -0.1 is not a fraction between 0 and 1"):
        images.crop(image, images.Box(10, 20, 30, 60), margin=-0.1)


@pytest.mark.parametrize(
    "box, reason",
    [
        (images.Box(30, 10, 10, 40), "empty or inverted"),
        (images.Box(10, 10, 10, 40), "empty or inverted"),
        (images.Box(-5, 0, 10, 10), "outside the 100x80 image"),
        (images.Box(0, 0, 101, 10), "outside the 100x80 image"),
        (images.Box(0, 0, math.nan, 10), "non-finite"),
    ],
)
def test_bad_boxes_are_refused(box, reason):
    with pytest.raises(images.BadImage, match=reason):
        images.crop(Image.new("RGB", (100, 80)), box)


def test_an_annotated_box_is_clipped_to_the_image_and_refused_when_nothing_is_left():
    assert images.clip(images.Box(-10, 5, 50, 120), 100, 100) == images.Box(0, 5, 50, 100)
    with pytest.raises(images.BadImage, match="lies outside the 100x100 image"):
        images.clip(images.Box(150, 5, 200, 50), 100, 100)
    with pytest.raises(images.BadImage, match="lies outside the 100x100 image"):
        images.clip(images.Box(99.5, 5, 200, 50), 100, 100)  # half a pixel inside is nothing
    with pytest.raises(images.BadImage, match="empty or inverted"):
        images.clip(images.Box(50, 5, 40, 50), 100, 100)


def test_reference_and_ours_agree_on_an_exif_rotated_photo(reference):
    data = imagegen.exif_rotated_jpeg(imagegen.scene(400, 300, seed=9), orientation=8)
    ours = preprocess.to_model_pixels(images.decode(data, MAX_PIXELS), 224)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    theirs = reference(images=upright.convert("RGB"), return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(normalised(ours, reference), theirs, atol=1e-4)
