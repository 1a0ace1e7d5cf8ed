"""Images for tests, generated (deterministic for a seed): photos-like scenes and
every awkward encoding a dataset may hold."""

import numpy as np
from PIL import Image

from services.localstack.scenes import encode, scene

__all__ = ["encode", "scene", "exif_rotated_jpeg", "sixteen_bit_png", "palette_png_with_transparency"]


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
