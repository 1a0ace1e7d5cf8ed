"""Image decoding and CLIP preprocessing, safe against hostile files.

decode() turns untrusted bytes into an RGB image (EXIF orientation applied,
any mode converted, a pixel limit against decompression bombs); crop() cuts a
validated box, grown by a margin for context; to_model_pixels() resizes and centre-crops exactly as
transformers' CLIPImageProcessor does, leaving uint8 pixels for Triton (the
model normalises them).
"""

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Size limits are enforced by decode() itself, before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None


class BadImage(ValueError):
    """The input cannot be embedded; the message says why, for the caller."""


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    def __str__(self) -> str:
        return "[" + ", ".join(f"{v:g}" for v in (self.x1, self.y1, self.x2, self.y2)) + "]"


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """Untrusted encoded bytes -> RGB image in its upright orientation."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImage(f"not an image in a known format ({len(data)} bytes, starting {data[:8]!r})") from None
    except Exception as error:  # PIL raises many types for damaged headers
        raise BadImage(f"unreadable image header: {error}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise BadImage(f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
    try:
        image.load()  # the first frame of an animation
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except Exception as error:
        raise BadImage(f"corrupt or truncated image: {error}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # High bit depth grayscale: scale to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / peak), 0, 255).round().astype(np.uint8), "L")
    has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
    if has_alpha:
        # Transparent pixels become white, as in transformers' convert_to_rgb.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def crop(image: Image.Image, box: Box, margin: float = 0.0) -> Image.Image:
    """The box's pixels, the box grown first by `margin` of its width and height on each
    side (within the image); a box that is inverted, empty or outside the image is refused."""
    values = (box.x1, box.y1, box.x2, box.y2)
    if not all(math.isfinite(v) for v in values):
        raise BadImage(f"box {box} has a non-finite coordinate")
    if box.x2 <= box.x1 or box.y2 <= box.y1:
        raise BadImage(f"box {box} is empty or inverted: it needs x1 < x2 and y1 < y2")
    width, height = image.size
    if box.x1 < 0 or box.y1 < 0 or box.x2 > width or box.y2 > height:
        raise BadImage(f"box {box} lies outside the {width}x{height} image")
    if not (math.isfinite(margin) and 0 <= margin <= 1):
        raise BadImage(f"box margin {margin:g} is not a fraction between 0 and 1")
    grown = grow(box, margin, width, height)
    left, top = math.floor(grown.x1), math.floor(grown.y1)
    right, bottom = max(math.ceil(grown.x2), left + 1), max(math.ceil(grown.y2), top + 1)
    return image.crop((left, top, right, bottom))


def grow(box: Box, margin: float, width: int, height: int) -> Box:
    """The box grown by `margin` of its width and height on each side, within the image."""
    dx, dy = (box.x2 - box.x1) * margin, (box.y2 - box.y1) * margin
    return Box(max(0.0, box.x1 - dx), max(0.0, box.y1 - dy), min(float(width), box.x2 + dx),
               min(float(height), box.y2 + dy))


def resize_shortest_edge(image: Image.Image, size: int) -> Image.Image:
    """The image scaled (bicubic) so that its shorter side is `size`, as CLIPImageProcessor does."""
    width, height = image.size
    if width <= height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    return image.resize((new_width, new_height), resample=Image.Resampling.BICUBIC)


def to_model_pixels(image: Image.Image, size: int) -> np.ndarray:
    """Resize the shortest edge to `size` and centre-crop a size x size square, as
    CLIPImageProcessor does; returns uint8 [size, size, 3]."""
    resized = np.asarray(resize_shortest_edge(image, size))
    new_height, new_width = resized.shape[:2]
    top, left = (new_height - size) // 2, (new_width - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])
