"""Generated, photo-like scenes (deterministic for a seed): the local stack's smoke
dataset and the tests' images."""

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
