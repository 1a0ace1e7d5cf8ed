"""Images for tests, generated (deterministic for a seed): photos-like scenes and
every awkward encoding a dataset may hold."""

import io

import numpy as np
from PIL import Image


def scene(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients plus a few coloured rectangles: structure at every scale."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    slope = rng.uniform(-0.5, 0.5, (3, 2))
    pixels = np.stack([base[c] + slope[c, 0] * x + slope[c, 1] * y for c in range(3)], axis=-1)
    for _ in range(6):
        x1, y1 = rng.integers(0, width - 8), rng.integers(0, height - 8)
        x2, y2 = x1 + rng.integers(8, max(9, width // 2)), y1 + rng.integers(8, max(9, height // 2))
        pixels[y1:y2, x1:x2] = rng.uniform(0, 255, 3)
    pixels += rng.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def exif_rotated_jpeg(image: Image.Image, orientation: int = 6) -> bytes:
    """JPEG of `image` stored sideways, with the EXIF Orientation tag that makes a viewer show it upright."""
    stored = {6: image.transpose(Image.Transpose.ROTATE_90), 8: image.transpose(Image.Transpose.ROTATE_270),
              3: image.transpose(Image.Transpose.ROTATE_180)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif)


def sixteen_bit_png(width: int, height: int) -> bytes:
    ramp = np.tile(np.linspace(0, 65535, width, dtype=np.uint16), (height, 1))
    return encode(Image.fromarray(ramp), "PNG")  # mode I;16


def palette_png_with_transparency(width: int, height: int) -> bytes:
    image = scene(width, height, 3).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)
