"""Image decoding and cropping, safe against hostile files: the embedder's input and
the gateway's thumbnails.

decode() turns untrusted bytes into an RGB image (EXIF orientation applied,
any mode converted; limits on pixels and on the memory decoding takes, both
checked from the header before any pixel is decoded); crop() cuts a
validated box, grown by a margin for context.
"""

import contextlib
import io
import math
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

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


_EXIF_ORIENTATION = 0x0112
_ROWS_PER_CHUNK = 512  # high-bit-depth pixels are scaled this many rows at a time


class DecodeBudget:
    """Bytes of decoded pixels all preparing threads may hold at once: a decode waits
    until there is room (one larger than the whole budget waits until it is alone)."""

    def __init__(self, total_bytes: int):
        self.total = total_bytes
        self.used = 0
        self._room = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, size: int):
        with self._room:
            self._room.wait_for(lambda: self.used == 0 or self.used + size <= self.total)
            self.used += size
        try:
            yield
        finally:
            with self._room:
                self.used -= size
                self._room.notify_all()


def open_image(data: bytes, max_pixels: int, max_decoded_bytes: int) -> tuple[Image.Image, int]:
    """The image's header, read from untrusted bytes, and about how many bytes decoding it
    to RGB will hold at once; refuses too many pixels or bytes before decoding any."""
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
    needed = decoded_bytes(image)
    if needed > max_decoded_bytes:
        raise BadImage(f"image is {width}x{height} in mode {image.mode}: decoding it takes about "
                       f"{needed // 2**20} MiB, over the limit of {max_decoded_bytes // 2**20} MiB")
    return image, needed


def decoded_bytes(image: Image.Image) -> int:
    """Its decoded pixels, then the RGB copy (with an RGBA pair first for transparency)."""
    pixels = image.size[0] * image.size[1]
    itemsize = np.dtype(ImageMode.getmode(image.mode).typestr).itemsize
    converted = 11 if _has_alpha(image) else 3
    return pixels * (len(image.getbands()) * itemsize + converted)


def load_rgb(image: Image.Image) -> Image.Image:
    """An opened image decoded, upright, as RGB."""
    try:
        image.load()  # the first frame of an animation
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except Exception as error:
        raise BadImage(f"corrupt or truncated image: {error}") from None


def is_upright_rgb_jpeg(image: Image.Image) -> bool:
    """Whether an opened image is a JPEG a plain decoder gets right: RGB or greyscale (not
    CMYK) and stored upright (no EXIF rotation to apply)."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: let the full decoder judge it
        return False
    return image.format == "JPEG" and image.mode in ("RGB", "L") and orientation == 1


def decode(data: bytes, max_pixels: int, max_decoded_bytes: int = 2**31) -> Image.Image:
    """Untrusted encoded bytes -> RGB image in its upright orientation."""
    return load_rgb(open_image(data, max_pixels, max_decoded_bytes)[0])


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or image.info.get("transparency") is not None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # High bit depth grayscale: scale to 8 bits instead of clipping at 255, a slice of
        # rows at a time (whole, in float64, it took 8 bytes a pixel three times over).
        values = np.asarray(image)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        scaled = np.empty(values.shape, dtype=np.uint8)
        for top in range(0, values.shape[0], _ROWS_PER_CHUNK):
            rows = values[top:top + _ROWS_PER_CHUNK].astype(np.float32) * np.float32(255.0 / peak)
            scaled[top:top + _ROWS_PER_CHUNK] = np.clip(rows, 0, 255).round()
        image = Image.fromarray(scaled, "L")
    if _has_alpha(image):
        # Transparent pixels become white, as in transformers' convert_to_rgb.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _check_box(box: Box) -> None:
    if not all(math.isfinite(v) for v in (box.x1, box.y1, box.x2, box.y2)):
        raise BadImage(f"box {box} has a non-finite coordinate")
    if box.x2 <= box.x1 or box.y2 <= box.y1:
        raise BadImage(f"box {box} is empty or inverted: it needs x1 < x2 and y1 < y2")


def clip(box: Box, width: int, height: int) -> Box:
    """The box cut to the image (annotations often run past an edge); refused when it is
    inverted, empty, or has less than a pixel inside."""
    _check_box(box)
    clipped = Box(max(0.0, box.x1), max(0.0, box.y1), min(float(width), box.x2), min(float(height), box.y2))
    if clipped.x2 - clipped.x1 < 1 or clipped.y2 - clipped.y1 < 1:
        raise BadImage(f"box {box} lies outside the {width}x{height} image")
    return clipped


def crop(image: Image.Image, box: Box, margin: float = 0.0) -> Image.Image:
    """The box's pixels, the box grown first by `margin` of its width and height on each
    side (within the image); a box that is inverted, empty or outside the image is refused."""
    return image.crop(crop_rectangle(box, margin, *image.size))


def crop_rectangle(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The whole pixels (left, top, right, bottom) crop() cuts for the box of a width x height image."""
    _check_box(box)
    if box.x1 < 0 or box.y1 < 0 or box.x2 > width or box.y2 > height:
        raise BadImage(f"box {box} lies outside the {width}x{height} image")
    if not (math.isfinite(margin) and 0 <= margin <= 1):
        raise BadImage(f"box margin {margin:g} is not a fraction between 0 and 1")
    grown = grow(box, margin, width, height)
    left, top = math.floor(grown.x1), math.floor(grown.y1)
    right, bottom = max(math.ceil(grown.x2), left + 1), max(math.ceil(grown.y2), top + 1)
    return left, top, right, bottom


def grow(box: Box, margin: float, width: int, height: int) -> Box:
    """The box grown by `margin` of its width and height on each side, within the image."""
    dx, dy = (box.x2 - box.x1) * margin, (box.y2 - box.y1) * margin
    return Box(max(0.0, box.x1 - dx), max(0.0, box.y1 - dy), min(float(width), box.x2 + dx),
               min(float(height), box.y2 + dy))


# WebP's method 1 encodes a 320-pixel thumbnail in about 1.5 ms here (method 3: 6 ms) for
# about a fifth more bytes: thumbnails are rendered while a person waits.
THUMBNAIL_FORMATS = {"webp": ("WEBP", "image/webp", {"quality": 80, "method": 1}),
                     "jpeg": ("JPEG", "image/jpeg", {"quality": 85, "optimize": True})}


def thumbnail(data: bytes, size: int, box: Box | None, image_format: str, max_pixels: int,
              max_decoded_bytes: int) -> bytes:
    """The upright image (or the box's region of it) scaled to at most `size` pixels on its
    longer side, encoded as `image_format` ("webp" or "jpeg")."""
    header, _ = open_image(data, max_pixels, max_decoded_bytes)
    if box is None and header.format == "JPEG":
        # Decode at 1/2 to 1/8 scale, never below the thumbnail's size: a fraction of the work.
        width, height = header.size
        scale = size / max(width, height)
        header.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
    image = load_rgb(header)
    if box is not None:
        image = crop(image, box)
    image.thumbnail((size, size), Image.Resampling.BICUBIC)
    name, _, options = THUMBNAIL_FORMATS[image_format]
    out = io.BytesIO()
    image.save(out, name, **options)
    return out.getvalue()
