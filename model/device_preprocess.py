"""CLIP's image preprocessing on a torch device, for the clip_jpeg Triton model: encoded
JPEGs in, the model's normalised input for each region of each image out.

A region is a rectangle of the decoded image (the whole image, or a box grown by its
margin), in whole pixels, that CLIPImageProcessor would resize (shortest edge to the
model's size, bicubic) and centre-crop. Here the centre square is cut first and resized
once, which is the same picture up to the crop's edge pixels and far less work for large
regions; fidelity against the CPU path (model/preprocess.py) is tested to a cosine of
0.99 in tests/test_jpeg_model.py.

JPEGs decode with torchvision.io.decode_jpeg, batched and on the device (nvJPEG on a
GPU), where torchvision is installed, as in the Triton image; elsewhere (the CPU wheels
this project installs for development: PyPI's torchvision for them does not import)
with Pillow. Everything after decoding is the same code on every device.
"""

import functools
import io

import numpy as np
from PIL import Image


# Squares resized in one call at most: 64 of 720x720 in float32 are 400 MB.
_RESIZE_GROUP = 64


class BadJpeg(ValueError):
    """A JPEG that does not decode; the message says why."""


@functools.cache  # once per process: every batch asks, and a failed import is not cached by Python
def _torchvision_io():
    try:
        from torchvision import io as tvio
    except Exception:  # absent, or a build that does not match torch
        return None
    return tvio


def jpeg_decoder() -> str:
    """Which decoder decode_jpegs uses here: "torchvision" or "pillow"."""
    return "torchvision" if _torchvision_io() is not None else "pillow"


def decode_jpegs(jpegs: list[bytes], device) -> list:
    """Each JPEG as an RGB uint8 tensor [3, H, W] on `device`, or the BadJpeg that stopped it.
    One corrupt JPEG costs only its own entry: a failed batch is retried one by one."""
    import torch

    tvio = _torchvision_io()
    if tvio is None:
        return [_decode_with_pillow(data, device) for data in jpegs]
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in jpegs]
    try:
        return list(tvio.decode_jpeg(encoded, mode=tvio.ImageReadMode.RGB, device=device))
    except RuntimeError:
        decoded = []
        for data in encoded:
            try:
                decoded.append(tvio.decode_jpeg(data, mode=tvio.ImageReadMode.RGB, device=device))
            except RuntimeError as error:
                decoded.append(BadJpeg(f"JPEG does not decode: {error}"))
        return decoded


def _decode_with_pillow(data: bytes, device):
    import torch

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return BadJpeg(f"not a JPEG but {image.format}")
            pixels = np.asarray(image.convert("RGB"))
    except Exception as error:  # Pillow raises many types for damaged files
        return BadJpeg(f"JPEG does not decode: {error}")
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(device)


def centre_square(region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The square CLIPImageProcessor's centre crop keeps of a region after its shortest-edge
    resize, in the region's own pixels: (left, top, right, bottom)."""
    left, top, right, bottom = region
    width, height = right - left, bottom - top
    side = min(width, height)
    x, y = left + (width - side) // 2, top + (height - side) // 2
    return x, y, x + side, y + side


def regions_to_pixels(images: list, regions: list[np.ndarray], size: int):
    """float32 [sum of K, 3, size, size] in 0..255, image by image and region by region,
    from RGB uint8 [3, H, W] tensors and each one's integer regions [K, 4] (left, top,
    right, bottom) inside it. Squares of the same side are resized in one call: a
    dataset's whole images usually share a size, so a batch of them costs one kernel."""
    import torch
    import torch.nn.functional as F

    squares = []
    for image, image_regions in zip(images, regions):
        for region in image_regions:
            left, top, right, bottom = centre_square(tuple(int(v) for v in region))
            squares.append(image[:, top:bottom, left:right])
    by_side: dict[int, list[int]] = {}
    for index, square in enumerate(squares):
        by_side.setdefault(square.shape[-1], []).append(index)
    pixels = torch.empty((len(squares), 3, size, size), dtype=torch.float32, device=squares[0].device)
    for same_side in by_side.values():
        for start in range(0, len(same_side), _RESIZE_GROUP):
            indexes = same_side[start : start + _RESIZE_GROUP]
            group = torch.stack([squares[i] for i in indexes]).float()
            # Bicubic with antialiasing, as Pillow's resize (which CLIPImageProcessor uses) filters.
            pixels[indexes] = F.interpolate(group, size=(size, size), mode="bicubic", antialias=True,
                                            align_corners=False)
    return pixels.clamp_(0, 255)


def check_regions(regions: np.ndarray, width: int, height: int) -> None:
    """Refuses regions that are not whole-pixel rectangles of at least one pixel inside the image."""
    if regions.ndim != 2 or regions.shape[1] != 4 or len(regions) == 0:
        raise BadJpeg(f"regions must be [K >= 1, 4], got {list(regions.shape)}")
    for left, top, right, bottom in regions.tolist():
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise BadJpeg(f"region {[left, top, right, bottom]} is not inside the {width}x{height} image")
